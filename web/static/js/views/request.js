// Request a consultation: with a named expert (optionally in one of their free slots) or from a
// specialty queue at a target institution. The patient is picked or registered in the same form.

import { ApiError, api } from "../api.js";
import { field, h, mount, newId, select } from "../dom.js";
import { KIND, LEVEL, SEX, URGENCY, dayKey, fmtDate, fmtTime, patientLine, specialtyLabel } from "../format.js";
import { store } from "../store.js";
import { errorSlot, pageHeader, toast } from "../ui/components.js";
import { expertCard } from "./experts.js";

const UID_RE = /^[0-9]+(\.[0-9]+)*$/;
const LEVEL_RANK = { village: 0, township: 1, county: 2, city: 3, province: 4 };

function radios(name, table, checked, legend) {
  return h("fieldset", { class: "radio-group" },
    h("legend", {}, legend),
    Object.entries(table).map(([value, [en, zh]]) => {
      const id = newId(name);
      return h("span", { class: "radio" },
        h("input", { type: "radio", name, id, value, checked: value === checked }),
        h("label", { htmlFor: id }, en, h("span", { class: "zh" }, ` ${zh}`)));
    }));
}

const radioValue = (form, name) => (form.querySelector(`input[name="${name}"]:checked`) || {}).value;

function patientSection(patients) {
  const mode = patients.length ? "existing" : "new";
  const existing = select({ name: "patient_id" }, [["", "Choose a patient… 选择患者"],
    ...patients.map((p) => [p.id, patientLine(p)])]);
  const name = h("input", { name: "patient_name", maxlength: 120, autocomplete: "off" });
  const sex = select({ name: "patient_sex" }, [["", "Choose… 请选择"], ...Object.entries(SEX).map(([v, [e, z]]) => [v, `${e} ${z}`])]);
  const birth = h("input", { type: "date", name: "patient_birth_date", max: new Date().toISOString().slice(0, 10) });
  const nid = h("input", { name: "patient_national_id", inputmode: "numeric", pattern: "[0-9]{17}[0-9Xx]", maxlength: 18, autocomplete: "off" });
  const phone = h("input", { type: "tel", name: "patient_phone", pattern: "\\+?[0-9 \\-]{5,20}", autocomplete: "off" });
  const existingBox = h("div", { class: "patient-existing" }, field("Patient 患者", existing, { hint: "Patients registered at your institution, newest first." }));
  const newBox = h("div", { class: "form-grid patient-new" },
    field("Full name 姓名", name), field("Sex 性别", sex), field("Date of birth 出生日期", birth),
    field("National ID 身份证号 (optional)", nid, { hint: "Stored encrypted; others see it masked." }),
    field("Phone 电话 (optional)", phone));
  const modeId = newId("pm");
  const toggle = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Patient 患者" },
    h("input", { type: "radio", name: "patient_mode", id: `${modeId}-e`, value: "existing", checked: mode === "existing", disabled: !patients.length }),
    h("label", { htmlFor: `${modeId}-e` }, "Existing patient 已登记"),
    h("input", { type: "radio", name: "patient_mode", id: `${modeId}-n`, value: "new", checked: mode === "new" }),
    h("label", { htmlFor: `${modeId}-n` }, "Register new patient 新患者"));
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
  const el = h("fieldset", { class: "panel" }, h("legend", {}, "Patient ", h("span", { class: "zh" }, "患者信息")), toggle, existingBox, newBox);
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
      toast(`Patient registered: ${p.name} 患者已登记`);
      return p.id;
    },
  };
}

async function slotSelect(expertId, wanted) {
  const slots = await api.get(`/api/experts/${expertId}/slots`, { status: "free" });
  const options = [["", "No fixed time — the expert schedules it 由专家安排时间"]];
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
    mount(root, pageHeader("Request a consultation", "申请会诊"),
      h("div", { class: "alert alert-error", role: "alert" }, "This expert cannot be booked. 该专家不可预约。"),
      h("a", { class: "btn", href: "#/experts" }, "Find another expert 查找专家"));
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
    target = h("fieldset", { class: "panel" }, h("legend", {}, "Expert and time ", h("span", { class: "zh" }, "专家与时间")),
      expertCard(expert, { user, compact: true, actions: false }),
      h("p", { class: "small" }, h("a", { href: `#/experts/${expertId}` }, "See all of this expert's slots 查看全部时段")),
      slot.missing ? h("div", { class: "alert alert-warn", role: "status" }, "The slot you picked is no longer free; choose another time. 所选时段已被预约。") : null,
      field("Time slot 时段 (China Standard Time 北京时间)", slot.el, { hint: "Video and remote-outpatient consultations take place in this slot.", wide: true }));
  } else {
    const institutions = queueTargets();
    const inst = select({ name: "target_institution_id", required: true }, [["", "Choose an institution… 选择机构"],
      ...institutions.map((i) => ({ value: i.id, label: `${i.name} · ${(LEVEL[i.level] || [i.level])[0]}`, group: partners.has(i.id) ? "My alliance 本医联体" : "Other alliances 其他医联体" }))], query.institution || "");
    const specialty = select({ name: "specialty" }, []);
    const fillSpecialties = () => {
      const chosen = store.institutions.get(Number(inst.value));
      const list = chosen ? [...new Set(chosen.departments.map((d) => d.specialty).filter(Boolean))] : [];
      mount(specialty, h("option", { value: "" }, chosen ? "Any department 任一科室" : "Choose an institution first"),
        list.map((s) => h("option", { value: s, selected: s === query.specialty }, specialtyLabel(s))));
    };
    inst.addEventListener("change", fillSpecialties);
    fillSpecialties();
    target = h("fieldset", { class: "panel" }, h("legend", {}, "Specialty queue ", h("span", { class: "zh" }, "专科队列")),
      h("p", { class: "muted" }, "The request goes to the department's queue; the first specialist to accept it schedules it into one of their slots. ",
        h("a", { href: "#/experts" }, "Prefer a named expert? Find an expert.")),
      h("div", { class: "form-grid" }, field("Target institution 目标机构", inst), field("Specialty / department 专科", specialty)));
  }

  const question = h("textarea", { name: "question", rows: 6, required: true, maxlength: 4000,
    placeholder: "History, findings, current treatment, and the question for the expert." });
  const studies = h("textarea", { name: "study_uids", rows: 2, placeholder: "1.2.840.…", spellcheck: "false" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Send request 提交申请");
  const form = h("form", { class: "request-form", novalidate: true },
    patient.el,
    target,
    h("fieldset", { class: "panel" }, h("legend", {}, "Consultation ", h("span", { class: "zh" }, "会诊信息")),
      radios("kind", KIND, query.kind && KIND[query.kind] ? query.kind : "video", "Kind 类型"),
      radios("urgency", URGENCY, "routine", "Urgency 紧急程度"),
      field("Clinical question 会诊目的与病情摘要", question, { wide: true }),
      field("DICOM study UIDs to share 共享影像 (optional, one per line)", studies, { wide: true, hint: "Study Instance UIDs of studies already uploaded by your institution." })),
    errors.el,
    h("div", { class: "form-actions" }, h("a", { class: "btn", href: expertId ? `#/experts/${expertId}` : "#/consultations" }, "Back 返回"), submit));

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.clear();
    if (!form.reportValidity()) return;
    const uids = studies.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
    const bad = uids.filter((u) => !UID_RE.test(u) || u.length > 64);
    if (bad.length) {
      errors.show(new ApiError(0, "validation_error", `Not a DICOM UID: ${bad.join(", ")}`));
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
      toast(`Consultation #${c.id} requested. 会诊申请已提交`);
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
    pageHeader(expertId ? "Request a consultation" : "Request from a specialty queue", expertId ? "申请会诊" : "专科队列申请"),
    form);
}
