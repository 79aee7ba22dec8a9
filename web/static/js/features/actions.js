// Workflow actions on a consultation, shared by the queue and the detail page.

import { ApiError, api } from "../api.js";
import { field, h, select } from "../dom.js";
import { dayKey, fmtDate, fmtSlot, fmtTime, patientLine } from "../format.js";
import { t } from "../i18n.js";
import { formDialog, reasonDialog } from "../ui/dialog.js";
import { toast } from "../ui/components.js";

const SLOT_REQUIRED = ["video", "outpatient"];

/** What this user may do with this consultation now. */
export function allowedActions(c, user) {
  const isRequester = c.requester_id === user.id;
  const isExpert = c.expert_id === user.id;
  const responder = isExpert || (c.expert_id === null && user.role === "specialist");
  const can = new Set();
  if (c.status === "requested" && responder) { can.add("accept"); can.add("decline"); }
  if (["requested", "accepted"].includes(c.status) && isRequester) can.add("cancel");
  if (c.status === "accepted" && (isRequester || isExpert)) can.add("start");
  if (c.status === "accepted" && isExpert) can.add("no_show");
  if (c.status === "in_progress" && isExpert) can.add("complete");
  if (["in_progress", "completed"].includes(c.status) && isExpert) can.add("report");
  return can;
}

export async function acceptDialog(c, user) {
  const slots = await api.get(`/api/experts/${user.id}/slots`, { status: "free" });
  const needsSlot = SLOT_REQUIRED.includes(c.kind) && c.urgency !== "emergency";
  const keep = c.slot && c.expert_id === user.id;
  const first = keep
    ? ["", t("actions.keep_time", { slot: fmtSlot(c.slot) })]
    : ["", needsSlot ? t("actions.choose_slot") : t("actions.no_fixed_time")];
  const choice = select({ name: "slot_id", required: needsSlot && !keep }, [first,
    ...slots.map((s) => ({ value: s.id, label: `${fmtTime(s.start)}–${fmtTime(s.end)}`, group: `${fmtDate(s.start)} (${dayKey(s.start)})` }))]);
  return formDialog({
    title: t("actions.accept_title", { id: c.id }),
    submitLabel: t("actions.accept"),
    body: [
      h("p", {}, h("strong", {}, patientLine(c.patient)), h("br"), h("span", { class: "muted" }, c.question)),
      field(keep ? t("actions.time_slot") : t("actions.schedule_into"), choice, {
        wide: true,
        hint: keep ? t("actions.hint_move") : needsSlot ? t("actions.hint_slot_needed") : null,
      }),
      slots.length ? null : h("p", { class: "alert alert-warn" }, t("actions.no_free_slots")),
    ],
    onSubmit: async () => {
      if (needsSlot && !keep && !choice.value) throw new ApiError(0, "slot_required", t("errors.slot_required"));
      const res = await api.post(`/api/consultations/${c.id}/accept`, choice.value ? { slot_id: Number(choice.value) } : {});
      toast(t("actions.accepted", { id: c.id }));
      return res;
    },
  });
}

export function declineDialog(c) {
  return reasonDialog({
    title: t("actions.decline_title", { id: c.id }),
    label: t("actions.decline_reason"),
    submitLabel: t("actions.decline"),
    onSubmit: async (reason) => {
      const res = await api.post(`/api/consultations/${c.id}/decline`, { reason });
      toast(t("actions.declined", { id: c.id }));
      return res;
    },
  });
}

export function cancelDialog(c) {
  return reasonDialog({
    title: t("actions.cancel_title", { id: c.id }),
    label: t("actions.cancel_reason"),
    submitLabel: t("actions.cancel_submit"),
    cancelLabel: t("actions.keep_request"),
    onSubmit: async (reason) => {
      const res = await api.post(`/api/consultations/${c.id}/cancel`, { reason });
      toast(t("actions.cancelled", { id: c.id }));
      return res;
    },
  });
}

export async function simpleAction(c, action) {
  const res = await api.post(`/api/consultations/${c.id}/${action.replace("_", "-")}`);
  toast(t(`actions.done_${action}`));
  return res;
}
