// The study picker: the studies this user may attach (their institution's, and those shared
// with their cases), searched with QIDO-RS by patient name, patient ID and study date, newest
// first, a page at a time. Typing a Study Instance UID stays possible as an advanced option.

import { field, h, mount, newId } from "../dom.js";
import { errorMessage, t } from "../i18n.js";
import { searchStudies, studyFacts } from "./dicomweb.js";

export const UID_RE = /^[0-9]+(\.[0-9]+)*$/;
const PAGE = 10;

/** A QIDO wildcard for what was typed: "chen gui" -> "*chen*gui*". */
function wildcard(text) {
  const words = text.trim().split(/[\s^*?]+/).filter(Boolean);
  return words.length ? `*${words.join("*")}*` : "";
}

const ymd = (value) => value.replaceAll("-", "");

/** One line about a study: "CT · CT chest · 2026-11-30 · 1 series · 12 images". */
export function studySummary(f) {
  return [f.modalities.join("/"), f.description, f.date,
    f.series !== undefined ? t("studies.series_count", { n: f.series }) : null,
    f.instances !== undefined ? t("studies.image_count", { n: f.instances }) : null].filter(Boolean).join(" · ");
}

/**
 * Open the picker; resolves to the chosen study's facts ({uid, patient, ...}), or null.
 * `exclude`: UIDs already attached (shown, not offered again).
 */
export function pickStudy({ exclude = [] } = {}) {
  return new Promise((resolve) => {
    const taken = new Set(exclude);
    const titleId = newId("picker");
    const name = h("input", { name: "patient_name", type: "search", maxlength: 64, autocomplete: "off" });
    const pid = h("input", { name: "patient_id", type: "search", maxlength: 64, autocomplete: "off" });
    const from = h("input", { name: "date_from", type: "date" });
    const to = h("input", { name: "date_to", type: "date" });
    const results = h("div", { class: "picker-results", "aria-live": "polite" });
    const pageText = h("span", { class: "muted small" });
    const prev = h("button", { type: "button", class: "btn btn-sm", disabled: true }, t("studies.picker_prev"));
    const next = h("button", { type: "button", class: "btn btn-sm", disabled: true }, t("studies.picker_next"));
    const search = h("form", { class: "picker-search" },
      field(t("studies.picker_patient_name"), name), field(t("studies.picker_patient_id"), pid),
      field(t("studies.picker_date_from"), from), field(t("studies.picker_date_to"), to),
      h("button", { type: "submit", class: "btn" }, t("studies.picker_search")));
    const uidInput = h("input", { name: "study_uid", maxlength: 64, spellcheck: "false", placeholder: "1.2.840.…", pattern: "[0-9]+(\\.[0-9]+)*" });
    const uidError = h("p", { class: "field-error", role: "alert" });
    const uidForm = h("form", { class: "picker-uid", novalidate: true }, field(t("studies.picker_uid_label"), uidInput),
      h("button", { type: "submit", class: "btn" }, t("studies.picker_uid_add")), uidError);
    const close = h("button", { type: "button", class: "btn", "data-testid": "picker-close" }, t("studies.picker_close"));
    const dlg = h("dialog", { class: "dialog picker", "aria-labelledby": titleId, "data-testid": "study-picker" },
      h("div", { class: "picker-head" }, h("h2", { id: titleId }, t("studies.picker_title")), close),
      h("p", { class: "muted small" }, t("studies.picker_intro")),
      search, results,
      h("div", { class: "picker-pager" }, prev, pageText, next),
      h("details", { class: "picker-advanced" }, h("summary", {}, t("studies.picker_advanced")), uidForm));

    let chosen = null;
    let offset = 0;
    let seq = 0;
    const choose = (facts) => { chosen = facts; dlg.close(); };
    dlg.addEventListener("close", () => { dlg.remove(); resolve(chosen); });
    close.addEventListener("click", () => dlg.close());

    async function load() {
      const mine = ++seq;
      const params = { limit: PAGE + 1, offset };
      const pn = wildcard(name.value);
      if (pn) params.PatientName = pn;
      const id = pid.value.trim();
      if (id) params.PatientID = `*${id.replace(/[*?]/g, "")}*`;
      if (from.value || to.value) params.StudyDate = `${ymd(from.value)}-${ymd(to.value)}`;
      results.setAttribute("aria-busy", "true");
      let found;
      try {
        found = await searchStudies(params);
      } catch (err) {
        if (mine === seq) mount(results, h("div", { class: "alert alert-error", role: "alert" }, errorMessage(err)));
        return;
      } finally {
        if (mine === seq) results.removeAttribute("aria-busy");
      }
      if (mine !== seq) return;
      const rows = found.slice(0, PAGE).map(studyFacts);
      prev.disabled = offset === 0;
      next.disabled = found.length <= PAGE;
      pageText.textContent = t("studies.picker_page", { n: Math.floor(offset / PAGE) + 1 });
      if (!rows.length) {
        mount(results, h("p", { class: "muted" }, t(offset ? "studies.picker_no_more" : "studies.picker_none")));
        return;
      }
      mount(results, h("table", { class: "picker-table" },
        h("thead", {}, h("tr", {}, ["picker_col_patient", "picker_col_date", "picker_col_modality", "picker_col_series", "picker_col_description", "picker_col_action"]
          .map((k) => h("th", { scope: "col" }, t(`studies.${k}`))))),
        h("tbody", {}, rows.map((f) => h("tr", { dataset: { studyUid: f.uid } },
          h("td", { "data-label": t("studies.picker_col_patient") }, h("strong", {}, f.patient || t("studies.no_name")), f.patientId ? h("span", { class: "muted small picker-pid" }, f.patientId) : null),
          h("td", { "data-label": t("studies.picker_col_date") }, f.date || "—"),
          h("td", { "data-label": t("studies.picker_col_modality") }, f.modalities.join("/") || "—"),
          h("td", { "data-label": t("studies.picker_col_series") }, f.series === undefined ? "—" : String(f.series),
            f.instances === undefined ? null : h("span", { class: "muted small" }, ` (${t("studies.image_count", { n: f.instances })})`)),
          h("td", { "data-label": t("studies.picker_col_description") }, f.description || "—"),
          h("td", {}, taken.has(f.uid)
            ? h("span", { class: "muted small" }, t("studies.picker_attached"))
            : h("button", { type: "button", class: "btn btn-sm btn-primary", "data-testid": "pick-study", onclick: () => choose(f) }, t("studies.picker_choose"))))))));
    }

    search.addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
    prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
    next.addEventListener("click", () => { offset += PAGE; load(); });
    uidForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const uid = uidInput.value.trim();
      if (!UID_RE.test(uid) || uid.length > 64) { uidError.textContent = t("studies.uid_invalid"); uidInput.focus(); return; }
      choose({ uid, patient: "", patientId: "", date: "", modalities: [], description: "" });
    });
    document.body.append(dlg);
    dlg.showModal();
    name.focus();
    load();
  });
}
