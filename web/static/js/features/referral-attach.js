// What a referral carries besides its text: studies chosen with the study picker and the
// patient's consultations ticked from a list (with their report status) — never typed UIDs.

import { h, mount, newId } from "../dom.js";
import { fmtDateTime, term } from "../format.js";
import { t } from "../i18n.js";
import { pickStudy, studySummary } from "./studypicker.js";

/** The studies section: {el, uids()}. */
export function studiesPicker() {
  const chosen = new Map();
  const list = h("ul", { class: "study-list ref-studies" });
  const draw = () => {
    if (!chosen.size) { mount(list, h("li", { class: "muted" }, t("referrals.studies_none"))); return; }
    mount(list, [...chosen.values()].map((f) => h("li", { dataset: { studyUid: f.uid } },
      h("span", { class: "study-text" },
        h("span", { class: "study-about" }, [f.patient, studySummary(f)].filter(Boolean).join(" · ")),
        h("code", { class: "uid" }, f.uid)),
      h("button", { type: "button", class: "btn btn-sm", onclick: () => { chosen.delete(f.uid); draw(); } }, t("referrals.studies_remove")))));
  };
  const add = h("button", { type: "button", class: "btn", "data-testid": "attach-study" }, t("referrals.studies_add"));
  add.addEventListener("click", async () => {
    const f = await pickStudy({ exclude: [...chosen.keys()] });
    if (f) { chosen.set(f.uid, f); draw(); }
  });
  draw();
  return {
    el: h("div", { class: "field field-wide" }, h("span", { class: "field-label" }, t("referrals.studies_label")), list, add),
    uids: () => [...chosen.keys()],
  };
}

const reportText = (status) => t(`referrals.report_${status || "none"}`);

/**
 * The patient's consultations as checkboxes: {el, show(consultations, patientId), ids()}.
 * `preset` (a consultation id) starts ticked: the consultation the referral follows from.
 */
export function consultationTicks(preset) {
  const ticked = new Set(preset ? [Number(preset)] : []);
  const box = h("div", { class: "ref-consults" });
  const el = h("fieldset", { class: "field field-wide ref-consult-field" },
    h("legend", { class: "field-label" }, t("referrals.consultations_label")), box);
  return {
    el,
    show(all, patientId) {
      const mine = all.filter((c) => c.patient_id === Number(patientId));
      if (!patientId) { mount(box, h("p", { class: "muted small" }, t("referrals.consultations_patient_first"))); return; }
      if (!mine.length) { mount(box, h("p", { class: "muted small" }, t("referrals.consultations_none"))); return; }
      mount(box, h("ul", { class: "check-list" }, mine.map((c) => {
        const id = newId("rc");
        const input = h("input", { type: "checkbox", id, name: "consultation_ids", value: String(c.id), checked: ticked.has(c.id),
          onchange: (ev) => { if (ev.target.checked) ticked.add(c.id); else ticked.delete(c.id); } });
        return h("li", { class: "check", dataset: { consultation: c.id } }, input,
          h("label", { htmlFor: id },
            h("strong", {}, `#${c.id} ${term("kind", c.kind)}`),
            h("span", { class: `badge ref-report ref-report-${c.report_status}` }, reportText(c.report_status)),
            h("span", { class: "muted small" }, ` ${fmtDateTime(c.created_at)}`),
            h("span", { class: "muted small clamp" }, c.question)));
      })));
    },
    /** The ticked ids that belong to the patient shown. */
    ids() {
      return [...box.querySelectorAll("input[name=consultation_ids]:checked")].map((i) => Number(i.value));
    },
  };
}
