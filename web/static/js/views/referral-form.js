// Refer a patient: up to a higher level or down to a clinic, to an institution the server offers
// for that direction (alliance members first) and one of its departments (with who is on call),
// optionally on a green channel with its onset time, with studies and consultations attached by
// picking. Opened from a patient (?patient=ID) or a consultation (?consultation=ID).

import { ApiError, api } from "../api.js";
import { field, h, mount, newId, select } from "../dom.js";
import { fromLocalInput, patientLine, term, toLocalInput } from "../format.js";
import { locale, t } from "../i18n.js";
import { isSpecialist, store } from "../store.js";
import { errorSlot, pageHeader, toast } from "../ui/components.js";
import { consultationTicks, studiesPicker } from "../features/referral-attach.js";
import { GREEN_CHANNELS, departmentName } from "../features/referral-ui.js";
import { patientSection } from "./request.js";

// The departments a green channel is usually received by, in order of preference.
const CHANNEL_SPECIALTIES = {
  stroke: ["neurology", "neurosurgery", "emergency"],
  chest_pain: ["cardiology", "emergency", "internal_medicine"],
  trauma: ["emergency", "orthopaedics", "neurosurgery"],
  maternal: ["obstetrics", "emergency"],
  neonatal: ["paediatrics", "emergency"],
};

// The channels whose clock starts at the first medical contact (workflow.MILESTONES).
const FIRST_CONTACT = ["chest_pain", "trauma", "maternal", "neonatal"];

const targetName = (i) => (locale() === "zh-CN" && i.local_name ? i.local_name : i.name);

function segmented(name, values, checked, label, legend) {
  return h("fieldset", { class: "radio-group" }, h("legend", {}, legend),
    values.map((value) => {
      const id = newId(name);
      return h("span", { class: "radio" },
        h("input", { type: "radio", name, id, value, checked: value === checked }),
        h("label", { htmlFor: id }, label(value)));
    }));
}

/** The green-channel choice: big tiles, the channels in red. */
function channelTiles(checked) {
  const values = ["", ...GREEN_CHANNELS];
  return h("fieldset", { class: "gc-tiles", dataset: { testid: "green-channel" } },
    h("legend", {}, t("referrals.form_green_kind")),
    values.map((value) => {
      const id = newId("gc");
      return h("span", { class: ["gc-tile", value && "gc-tile-green"] },
        h("input", { type: "radio", name: "green_channel", id, value, checked: value === (checked || "") }),
        h("label", { htmlFor: id }, value ? term("green_channel", value) : t("referrals.form_green_none")));
    }));
}

export async function render({ root, query, user, navigate }) {
  const errors = errorSlot();
  let fromConsultation = null;
  if (query.consultation) fromConsultation = await api.get(`/api/consultations/${Number(query.consultation)}`);
  const [patients, consultations] = await Promise.all([
    store.loadPatients().catch(() => store.knownPatients()),
    api.get("/api/consultations").catch(() => []),
  ]);
  const patient = patientSection(patients);
  const patientSelect = patient.el.querySelector("select[name=patient_id]");
  const wanted = fromConsultation ? fromConsultation.patient : patients.find((p) => String(p.id) === String(query.patient));
  if (wanted) {
    if (![...patientSelect.options].some((o) => o.value === String(wanted.id))) patientSelect.append(h("option", { value: String(wanted.id) }, patientLine(wanted)));
    patientSelect.value = String(wanted.id);
  }

  const direction = query.direction === "down" || query.direction === "up" ? query.direction : (isSpecialist(user) ? "down" : "up");
  const dirGroup = segmented("direction", ["up", "down"], direction, (v) => term("direction", v), t("referrals.form_direction"));
  const inst = select({ name: "to_institution_id", required: true }, []);
  const dept = select({ name: "department", id: newId("dept") }, []);
  const deptHint = h("p", { class: "hint", id: newId("dh") });
  dept.setAttribute("aria-describedby", deptHint.id);
  let targets = [];
  let deptTouched = false;

  const channelEl = channelTiles(query.green_channel);
  const onset = h("input", { type: "datetime-local", name: "onset_at", max: toLocalInput(new Date()) });
  const contact = h("input", { type: "datetime-local", name: "first_contact_at", max: toLocalInput(new Date()) });
  const contactField = field(t("referrals.form_first_contact"), contact, { hint: t("referrals.form_first_contact_hint") });
  const onsetField = field(t("referrals.form_onset"), onset, { hint: t("referrals.form_onset_hint") });
  const greenBox = h("div", { class: "gc-times form-grid" }, onsetField, contactField);
  const channel = () => (channelEl.querySelector("input:checked") || {}).value || "";

  const reason = h("textarea", { name: "reason", rows: 3, required: true, maxlength: 4000, placeholder: t("referrals.form_reason_placeholder") });
  const summary = h("textarea", { name: "summary", rows: 5, maxlength: 20000, placeholder: t("referrals.form_summary_placeholder") });
  const dueDefault = new Date(Date.now() + 7 * 86400000);
  const due = h("input", { type: "datetime-local", name: "follow_up_due", value: `${toLocalInput(dueDefault).slice(0, 10)}T09:00` });
  const plan = h("textarea", { name: "follow_up_plan", rows: 3, maxlength: 4000, placeholder: t("referrals.form_plan_placeholder") });
  const followBox = h("fieldset", { class: "panel" }, h("legend", {}, t("referrals.form_follow_legend")),
    h("div", { class: "form-grid" }, field(t("referrals.form_follow_due"), due, { hint: t("referrals.form_follow_due_hint") }),
      field(t("referrals.form_follow_plan"), plan, { wide: true })));
  const greenPanel = h("fieldset", { class: "panel gc-panel" }, h("legend", {}, t("referrals.form_green_title")),
    h("p", { class: "muted small" }, t("referrals.form_green_intro")), channelEl, greenBox);

  const studies = studiesPicker();
  const ticks = consultationTicks(fromConsultation ? fromConsultation.id : null);
  const showConsults = () => ticks.show(consultations, patientSelect.value);
  patient.el.addEventListener("change", showConsults);
  showConsults();

  function pickDepartment() {
    const chosen = targets.find((i) => String(i.id) === inst.value);
    const ch = channel();
    if (!chosen || deptTouched || !ch) return;
    for (const s of CHANNEL_SPECIALTIES[ch]) {
      const d = chosen.departments.find((x) => x.specialty === s);
      if (d) { dept.value = String(d.id); break; }
    }
    drawDeptHint();
  }

  function drawDeptHint() {
    const chosen = targets.find((i) => String(i.id) === inst.value);
    const d = chosen && chosen.departments.find((x) => String(x.id) === dept.value);
    deptHint.textContent = !d ? t("referrals.form_dept_hint")
      : d.on_call_now ? t("referrals.form_on_call_now", { n: d.on_call_now }) : t("referrals.form_nobody_on_call");
    deptHint.classList.toggle("warn-text", Boolean(d && !d.on_call_now && channel()));
  }

  function fillDepartments() {
    const chosen = targets.find((i) => String(i.id) === inst.value);
    mount(dept, h("option", { value: "" }, chosen ? t("referrals.form_any_department") : t("referrals.form_institution_first")),
      (chosen ? chosen.departments : []).map((d) => h("option", { value: String(d.id) },
        d.on_call_now ? t("referrals.form_dept_option", { name: departmentName(d), n: d.on_call_now }) : departmentName(d))));
    deptTouched = false;
    pickDepartment();
    drawDeptHint();
  }

  async function loadTargets() {
    const dir = (dirGroup.querySelector("input:checked") || {}).value || "up";
    mount(inst, h("option", { value: "" }, t("common.loading")));
    try {
      targets = await api.get("/api/referral-targets", { direction: dir });
    } catch (err) {
      targets = [];
      errors.show(err);
    }
    mount(inst, h("option", { value: "" }, targets.length ? t("referrals.form_choose_institution") : t("referrals.form_no_targets")));
    for (const [mine, label] of [[true, t("referrals.form_my_alliance")], [false, t("referrals.form_other_institutions")]]) {
      const list = targets.filter((i) => i.in_my_alliance === mine);
      if (list.length) inst.append(h("optgroup", { label }, list.map((i) => h("option", { value: String(i.id) }, `${targetName(i)} · ${term("level", i.level)}`))));
    }
    if (query.to && targets.some((i) => String(i.id) === String(query.to))) inst.value = String(query.to);
    greenPanel.hidden = dir !== "up";
    followBox.hidden = dir !== "down";
    fillDepartments();
  }

  function syncChannel() {
    const ch = channel();
    greenBox.hidden = !ch;
    onset.required = Boolean(ch);
    contactField.hidden = !FIRST_CONTACT.includes(ch);
    form.classList.toggle("gc-active", Boolean(ch));
    pickDepartment();
    drawDeptHint();
  }

  const submit = h("button", { type: "submit", class: "btn btn-primary btn-send" }, t("referrals.form_send"));
  const form = h("form", { class: "request-form referral-form", novalidate: true },
    patient.el,
    h("fieldset", { class: "panel" }, h("legend", {}, t("referrals.form_where")),
      dirGroup,
      h("div", { class: "form-grid" }, field(t("referrals.form_institution"), inst), h("div", { class: "field" },
        h("label", { htmlFor: dept.id }, t("referrals.form_department")), dept, deptHint))),
    greenPanel,
    h("fieldset", { class: "panel" }, h("legend", {}, t("referrals.form_case")),
      field(t("referrals.form_reason"), reason, { wide: true }),
      field(t("referrals.form_summary"), summary, { wide: true, hint: t("referrals.form_summary_hint") }),
      studies.el, ticks.el),
    followBox,
    errors.el,
    h("div", { class: "form-actions" },
      h("a", { class: "btn", href: fromConsultation ? `#/consultations/${fromConsultation.id}` : "#/referrals" }, t("referrals.form_back")), submit));

  dirGroup.addEventListener("change", loadTargets);
  inst.addEventListener("change", fillDepartments);
  dept.addEventListener("change", () => { deptTouched = true; drawDeptHint(); });
  channelEl.addEventListener("change", syncChannel);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.clear();
    if (!form.reportValidity()) return;
    const dir = dirGroup.querySelector("input:checked").value;
    const ch = dir === "up" ? channel() : "";
    const now = toLocalInput(new Date());
    for (const [input, label] of [[onset, "referrals.form_onset"], [contact, "referrals.form_first_contact"]]) {
      if (ch && input.value && input.value > now) {
        errors.show(new ApiError(0, "validation_error", t("referrals.form_future", { field: t(label) })));
        return;
      }
    }
    submit.disabled = true;
    try {
      const patientId = await patient.resolve();
      const body = { patient_id: patientId, direction: dir, to_institution_id: Number(inst.value), reason: reason.value.trim() };
      if (dept.value) body.department = Number(dept.value);
      if (summary.value.trim()) body.summary = summary.value.trim();
      if (ch) {
        body.green_channel = ch;
        if (onset.value) body.onset_at = fromLocalInput(onset.value);
        if (FIRST_CONTACT.includes(ch) && contact.value) body.first_contact_at = fromLocalInput(contact.value);
      }
      const ids = ticks.ids();
      if (fromConsultation && ids.includes(fromConsultation.id)) body.consultation_id = fromConsultation.id;
      const more = ids.filter((id) => id !== body.consultation_id);
      if (more.length) body.consultation_ids = more;
      const uids = studies.uids();
      if (uids.length) body.study_uids = uids;
      if (dir === "down") {
        if (due.value) body.follow_up_due = fromLocalInput(due.value);
        if (plan.value.trim()) body.follow_up_plan = plan.value.trim();
      }
      const r = await api.post("/api/referrals", body);
      toast(t(ch ? "referrals.sent_green" : "referrals.sent", { id: r.id }));
      navigate(`#/referrals/${r.id}`);
    } catch (err) {
      errors.show(err);
    } finally {
      submit.disabled = false;
    }
  });

  mount(root, pageHeader(t("referrals.form_title")),
    fromConsultation ? h("p", { class: "alert alert-info" }, t("referrals.form_from_consultation", { id: fromConsultation.id })) : null,
    form);
  syncChannel();
  await loadTargets();
}
