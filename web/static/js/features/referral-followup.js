// Recording the outcome of a follow-up visit (the follow-up list and the referral page).

import { api } from "../api.js";
import { field, h } from "../dom.js";
import { fmtDateTime, patientLine } from "../format.js";
import { t } from "../i18n.js";
import { toast } from "../ui/components.js";
import { formDialog } from "../ui/dialog.js";

/** Ask for the outcome and complete the follow-up; resolves to the updated follow-up or null. */
export function outcomeDialog(f) {
  const outcome = h("textarea", { name: "outcome", rows: 5, required: true, maxlength: 4000, placeholder: t("followups.outcome_placeholder") });
  return formDialog({
    title: t("followups.outcome_title"),
    submitLabel: t("followups.outcome_submit"),
    body: [
      h("p", {}, h("strong", {}, patientLine(f.patient)), h("br"),
        h("span", { class: "muted small" }, t("followups.due_at", { time: fmtDateTime(f.due_at) }))),
      f.plan ? h("p", { class: "tl-note prewrap" }, f.plan) : null,
      field(t("followups.outcome"), outcome, { wide: true }),
    ],
    onSubmit: async () => {
      const res = await api.post(`/api/follow-ups/${f.id}/complete`, { outcome: outcome.value.trim() });
      toast(t("followups.recorded"));
      return res;
    },
  });
}
