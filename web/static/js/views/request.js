// Request a consultation: with a named expert (optionally in one of their free slots) or from a
// specialty queue at a target institution. The patient is picked or registered in the same form.

import { ApiError, api } from "../api.js";
import { field, h, mount, newId, select } from "../dom.js";
import { t } from "../i18n.js";
import { dayKey, fmtDate, fmtTime, patientLine, specialtyLabel, term } from "../format.js";
import { store } from "../store.js";
import { errorSlot, toast } from "../ui/components.js";
import { UID_RE, pickStudy, studySummary } from "../features/studypicker.js";
import { expertCard } from "./experts.js";

const KINDS = ["video", "outpatient", "imaging", "pathology"];
const URGENCIES = ["routine", "urgent", "emergency"];
const SEXES = ["male", "female", "other", "unknown"];
const LEVEL_RANK = { village: 0, township: 1, county: 2, city: 3, province: 4 };

function pageTitle(text) {
  return h("div", { class: "page-header" }, h("h1", { tabindex: "-1" }, text));
}

function radios(name, group, values, checked, legend) {
  return h("fieldset", { class: "radio-group" },
    h("legend", {}, legend),
    values.map((value) => {
      const id = newId(name);
      return h("span", { class: "radio" },
        h("input", { type: "radio", name, id, value, checked: value === checked }),
        h("label", { htmlFor: id }, term(group, value)));
    }));
}

/** The studies to share with the request: chosen with the study picker, or typed as UIDs. */
function studiesSection() {
  const chosen = new Map();
  const list = h("ul", { class: "study-list request-studies" });
  const typed = h("textarea", { name: "study_uids", rows: 2, placeholder: "1.2.840.…", spellcheck: "false" });
  const draw = () => {
    if (!chosen.size) { mount(list, h("li", { class: "muted" }, t("request.studies_none"))); return; }
    mount(list, [...chosen.values()].map((f) => h("li", { dataset: { studyUid: f.uid } },
      h("span", { class: "study-text" }, h("span", { class: "study-about" }, [f.patient, studySummary(f)].filter(Boolean).join(" · ")), h("code", { class: "uid" }, f.uid)),
      h("button", { type: "button", class: "btn btn-sm", onclick: () => { chosen.delete(f.uid); draw(); } }, t("request.studies_remove")))));
  };
  const add = h("button", { type: "button", class: "btn", "data-testid": "attach-study" }, t("request.studies_add"));
  add.addEventListener("click", async () => {
    const f = await pickStudy({ exclude: [...chosen.keys()] });
    if (f) { chosen.set(f.uid, f); draw(); }
  });
  draw();
  const el = h("div", { class: "field field-wide" },
    h("span", { class: "field-label" }, t("request.studies_label")), list, add,
    h("details", { class: "picker-advanced" }, h("summary", {}, t("request.studies_advanced")),
      field(t("request.studies_uids"), typed, { wide: true, hint: t("request.studies_uid_hint") })));
  return {
    el,
    /** The UIDs picked and typed; throws on a typed value that is not a UID. */
    uids() {
      const more = typed.value.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
      const bad = more.filter((u) => !UID_RE.test(u) || u.length > 64);
      if (bad.length) throw new ApiError(0, "validation_error", t("request.bad_uid", { uids: bad.join(", ") }));
      return [...new Set([...chosen.keys(), ...more])];
    },
  };
}

const radioValue = (form, name) => (form.querySelector(`input[name="${name}"]:checked`) || {}).value;

export function patientSection(patients) {
  const mode = patients.length ? "existing" : "new";
  const existing = select({ name: "patient_id" }, [["", t("request.choose_patient")],
    ...patients.map((p) => [p.id, patientLine(p)])]);
  const name = h("input", { name: "patient_name", maxlength: 120, autocomplete: "off" });
  const sex = select({ name: "patient_sex" }, [["", t("request.choose")], ...SEXES.map((v) => [v, term("sex", v)])]);
  const birth = h("input", { type: "date", name: "patient_birth_date", max: new Date().toISOString().slice(0, 10) });
  const nid = h("input", { name: "patient_national_id", inputmode: "numeric", pattern: "[0-9]{17}[0-9Xx]", maxlength: 18, autocomplete: "off" });
  const phone = h("input", { type: "tel", name: "patient_phone", pattern: "\\+?[0-9 \\-]{5,20}", autocomplete: "off" });
  const existingBox = h("div", { class: "patient-existing" }, field(t("request.patient"), existing, { hint: t("request.patient_hint") }));
  const newBox = h("div", { class: "form-grid patient-new" },
    field(t("request.full_name"), name), field(t("request.sex"), sex), field(t("request.birth_date"), birth),
    field(t("request.national_id"), nid, { hint: t("request.national_id_hint") }),
    field(t("request.phone"), phone));
  const modeId = newId("pm");
  const toggle = h("div", { class: "segmented", role: "radiogroup", "aria-label": t("request.patient") },
    h("input", { type: "radio", name: "patient_mode", id: `${modeId}-e`, value: "existing", checked: mode === "existing", disabled: !patients.length }),
    h("label", { htmlFor: `${modeId}-e` }, t("request.existing_patient")),
    h("input", { type: "radio", name: "patient_mode", id: `${modeId}-n`, value: "new", checked: mode === "new" }),
    h("label", { htmlFor: `${modeId}-n` }, t("request.register_patient")));
  const sync = () => {
    const isNew = toggle.querySelector("input:checked").value === "new";
    existingBox.hidden = isNew;
    newBox.hidden = !isNew;
    existing.required = !isNew;
    name.required = isNew;
    sex.required = isNew;
  };
  toggle.addEventListener("change", sync);
  sync();
  const el = h("fieldset", { class: "panel" }, h("legend", {}, t("request.patient_legend")), toggle, existingBox, newBox);
  return {
    el,
    /** The patient id, registering the new patient first when asked. */
    async resolve() {
      if (toggle.querySelector("input:checked").value === "existing") return Number(existing.value);
      const body = { name: name.value.trim(), sex: sex.value };
      if (birth.value) body.birth_date = birth.value;
      if (nid.value.trim()) body.national_id = nid.value.trim();
      if (phone.value.trim()) body.phone = phone.value.trim();
      const p = await api.post("/api/patients", body);
      // Once registered, the patient is offered as an existing one so a retry does not duplicate it.
      store.rememberPatients([p]);
      existing.append(h("option", { value: String(p.id) }, patientLine(p)));
      existing.value = String(p.id);
      toggle.querySelector("input[value=existing]").disabled = false;
      toggle.querySelector("input[value=existing]").checked = true;
      sync();
      toast(t("request.patient_registered", { name: p.name }));
      return p.id;
    },
  };
}

async function slotSelect(expertId, wanted) {
  const slots = await api.get(`/api/experts/${expertId}/slots`, { status: "free" });
  const options = [["", t("request.no_fixed_time")]];
  for (const s of slots) options.push({ value: s.id, label: `${fmtTime(s.start)}–${fmtTime(s.end)}`, group: `${fmtDate(s.start)} (${dayKey(s.start)})` });
  const el = select({ name: "slot_id" }, options, wanted && slots.some((s) => String(s.id) === String(wanted)) ? wanted : "");
  return { el, missing: wanted && !slots.some((s) => String(s.id) === String(wanted)) };
}

function queueTargets() {
  const partners = store.partnerIds();
  return [...store.institutions.values()]
    .filter((i) => (i.departments || []).some((d) => d.specialty))
    .sort((a, b) => (partners.has(b.id) - partners.has(a.id)) || (LEVEL_RANK[b.level] - LEVEL_RANK[a.level]) || a.name.localeCompare(b.name));
}

export async function render({ root, query, user, navigate }) {
  const expertId = query.expert ? Number(query.expert) : null;
  const expert = expertId ? store.expertsById.get(expertId) : null;
  if (expertId && (!expert || expert.id === user.id)) {
    mount(root, pageTitle(t("request.title_expert")),
      h("div", { class: "alert alert-error", role: "alert" }, t("request.expert_unbookable")),
      h("a", { class: "btn", href: "#/experts" }, t("request.find_expert")));
    return;
  }
  const errors = errorSlot();
  const patients = await store.loadPatients().catch(() => store.knownPatients());
  const patient = patientSection(patients);
  const partners = store.partnerIds();

  let target;
  let slot = null;
  if (expertId) {
    slot = await slotSelect(expertId, query.slot);
    target = h("fieldset", { class: "panel" }, h("legend", {}, t("request.expert_legend")),
      expertCard(expert, { user, compact: true, actions: false }),
      h("p", { class: "small" }, h("a", { href: `#/experts/${expertId}` }, t("request.all_slots"))),
      slot.missing ? h("div", { class: "alert alert-warn", role: "status" }, t("request.slot_gone")) : null,
      field(t("request.slot"), slot.el, { hint: t("request.slot_hint"), wide: true }));
  } else {
    const institutions = queueTargets();
    const inst = select({ name: "target_institution_id", required: true }, [["", t("request.choose_institution")],
      ...institutions.map((i) => ({ value: i.id, label: `${i.name} · ${term("level", i.level)}`, group: partners.has(i.id) ? t("request.my_alliance") : t("request.other_alliances") }))], query.institution || "");
    const specialty = select({ name: "specialty" }, []);
    const fillSpecialties = () => {
      const chosen = store.institutions.get(Number(inst.value));
      const list = chosen ? [...new Set(chosen.departments.map((d) => d.specialty).filter(Boolean))] : [];
      mount(specialty, h("option", { value: "" }, chosen ? t("request.any_department") : t("request.institution_first")),
        list.map((s) => h("option", { value: s, selected: s === query.specialty }, specialtyLabel(s))));
    };
    inst.addEventListener("change", fillSpecialties);
    fillSpecialties();
    target = h("fieldset", { class: "panel" }, h("legend", {}, t("request.queue_legend")),
      h("p", { class: "muted" }, t("request.queue_intro"), " ",
        h("a", { href: "#/experts" }, t("request.prefer_expert"))),
      h("div", { class: "form-grid" }, field(t("request.target_institution"), inst), field(t("request.specialty"), specialty)));
  }

  const question = h("textarea", { name: "question", rows: 6, required: true, maxlength: 4000,
    placeholder: t("request.question_placeholder") });
  const studies = studiesSection();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, t("request.send"));
  const form = h("form", { class: "request-form", novalidate: true },
    patient.el,
    target,
    h("fieldset", { class: "panel" }, h("legend", {}, t("request.consult_legend")),
      radios("kind", "kind", KINDS, KINDS.includes(query.kind) ? query.kind : "video", t("request.kind")),
      radios("urgency", "urgency", URGENCIES, "routine", t("request.urgency")),
      field(t("request.question"), question, { wide: true }),
      studies.el),
    errors.el,
    h("div", { class: "form-actions" }, h("a", { class: "btn", href: expertId ? `#/experts/${expertId}` : "#/consultations" }, t("request.back")), submit));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.clear();
    if (!form.reportValidity()) return;
    let uids;
    try {
      uids = studies.uids();
    } catch (err) {
      errors.show(err);
      return;
    }
    submit.disabled = true;
    try {
      const patientId = await patient.resolve();
      const body = { patient_id: patientId, kind: radioValue(form, "kind"), urgency: radioValue(form, "urgency"), question: question.value.trim() };
      if (uids.length) body.study_uids = uids;
      if (expertId) {
        body.expert_id = expertId;
        if (slot && slot.el.value) body.slot_id = Number(slot.el.value);
      } else {
        body.target_institution_id = Number(form.elements.target_institution_id.value);
        if (form.elements.specialty.value) body.specialty = form.elements.specialty.value;
      }
      const c = await api.post("/api/consultations", body);
      toast(t("request.sent", { id: c.id }));
      navigate(`#/consultations/${c.id}`);
    } catch (err) {
      errors.show(err);
      if (err.code === "slot_taken" || err.code === "slot_unavailable") {
        // Offer the expert's current free slots again.
        try {
          const fresh = await slotSelect(expertId, "");
          fresh.el.id = slot.el.id;
          const hint = slot.el.getAttribute("aria-describedby");
          if (hint) fresh.el.setAttribute("aria-describedby", hint);
          slot.el.replaceWith(fresh.el);
          slot = fresh;
        } catch {
          // The slot list stays as it was; the error above already tells what happened.
        }
      }
    } finally {
      submit.disabled = false;
    }
  });

  mount(root,
    pageTitle(expertId ? t("request.title_expert") : t("request.title_queue")),
    form);
}
