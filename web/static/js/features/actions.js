// Workflow actions on a consultation, shared by the queue and the detail page.

import { ApiError, api } from "../api.js";
import { field, h, select } from "../dom.js";
import { dayKey, fmtDate, fmtSlot, fmtTime, patientLine } from "../format.js";
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
    ? ["", `Keep the requested time: ${fmtSlot(c.slot)} 保持申请时段`]
    : ["", needsSlot ? "Choose one of your free slots… 选择时段" : "No fixed time — read when ready 不指定时段"];
  const choice = select({ name: "slot_id", required: needsSlot && !keep }, [first,
    ...slots.map((s) => ({ value: s.id, label: `${fmtTime(s.start)}–${fmtTime(s.end)}`, group: `${fmtDate(s.start)} (${dayKey(s.start)})` }))]);
  return formDialog({
    title: `Accept consultation #${c.id} 接诊`,
    submitLabel: "Accept 接诊",
    body: [
      h("p", {}, h("strong", {}, patientLine(c.patient)), h("br"), h("span", { class: "muted" }, c.question)),
      field(keep ? "Time slot 时段" : "Schedule into 安排时段", choice, {
        wide: true,
        hint: keep ? "Pick another of your free slots to move it." : needsSlot
          ? "A video or remote-outpatient consultation takes place in one of your slots." : null,
      }),
      slots.length ? null : h("p", { class: "alert alert-warn" }, "You have no free slots in the next two weeks; edit your availability. 近两周无空闲时段。"),
    ],
    onSubmit: async () => {
      if (needsSlot && !keep && !choice.value) throw new ApiError(0, "slot_required", "Choose a slot for this consultation. 请选择时段。");
      const res = await api.post(`/api/consultations/${c.id}/accept`, choice.value ? { slot_id: Number(choice.value) } : {});
      toast(`Consultation #${c.id} accepted. 已接诊`);
      return res;
    },
  });
}

export function declineDialog(c) {
  return reasonDialog({
    title: `Decline consultation #${c.id} 拒绝会诊`,
    label: "Reason, shown to the requesting doctor 拒绝原因",
    submitLabel: "Decline 拒绝",
    onSubmit: async (reason) => {
      const res = await api.post(`/api/consultations/${c.id}/decline`, { reason });
      toast(`Consultation #${c.id} declined.`);
      return res;
    },
  });
}

export function cancelDialog(c) {
  return reasonDialog({
    title: `Cancel consultation #${c.id} 取消会诊`,
    label: "Reason for cancelling 取消原因",
    submitLabel: "Cancel consultation 取消会诊",
    onSubmit: async (reason) => {
      const res = await api.post(`/api/consultations/${c.id}/cancel`, { reason });
      toast(`Consultation #${c.id} cancelled.`);
      return res;
    },
  });
}

const MESSAGES = {
  start: "Consultation started. 会诊开始",
  complete: "Consultation completed. 会诊完成",
  no_show: "Recorded as no-show. 已记录未到诊",
};

export async function simpleAction(c, action) {
  const res = await api.post(`/api/consultations/${c.id}/${action.replace("_", "-")}`);
  toast(MESSAGES[action] || "Done.");
  return res;
}
