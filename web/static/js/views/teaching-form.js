// Schedule a teaching session, or edit one not yet started: title, kind, start and end in
// Shanghai time, the presenter (me or an alliance expert), the invited institutions grouped by
// alliance with an "all members" shortcut per alliance, a description and whether to record.

import { ApiError, api, request } from "../api.js";
import { field, h, mount, newId, select } from "../dom.js";
import { fromLocalInput, toLocalInput } from "../format.js";
import { t } from "../i18n.js";
import { isClinical, store } from "../store.js";
import { emptyState, errorSlot, loading, pageHeader, toast } from "../ui/components.js";
import { KINDS, kindText } from "../features/teaching-ui.js";

const HOUR = 3600 * 1000;

function presenterSelect(user, chosen) {
  const mine = isClinical(user) ? [{ value: user.id, label: t("teaching.form_me", { name: user.display_name }) }] : [];
  const experts = store.experts.filter((e) => e.id !== user.id).map((e) => ({
    value: e.id, label: `${e.display_name} · ${store.institutionName(e.institution_id)}`, group: t("teaching.form_experts"),
  }));
  const options = [{ value: "", label: t("teaching.form_choose_presenter") }, ...mine, ...experts];
  if (chosen && !options.some((o) => String(o.value) === String(chosen.id))) {
    options.push({ value: chosen.id, label: chosen.display_name });
  }
  return select({ name: "presenter_id", required: true }, options, chosen ? chosen.id : (mine.length ? user.id : ""));
}

/** Checkboxes of institutions per alliance; an institution in two alliances stays in step. */
function invitationPicker(invited) {
  const chosen = new Set(invited.map(Number));
  const boxes = [];
  const groups = [];
  const box = (id) => {
    const cb = h("input", { type: "checkbox", name: "invited", value: String(id), id: newId("inv"), checked: chosen.has(id) });
    boxes.push(cb);
    return h("span", { class: "check teach-inv" }, cb, h("label", { htmlFor: cb.id }, store.institutionName(id)));
  };
  const inAlliance = new Set();
  const fieldsets = store.alliances.map((a) => {
    a.member_ids.forEach((m) => inAlliance.add(m));
    const all = h("input", { type: "checkbox", name: "all_members", id: newId("all"), dataset: { all: a.id } });
    const members = a.member_ids.filter((m) => store.institutions.has(m)).map(box);
    const group = { all, ids: a.member_ids };
    groups.push(group);
    return h("fieldset", { class: "teach-alliance" },
      h("legend", {}, a.name),
      h("span", { class: "check teach-all" }, all, h("label", { htmlFor: all.id }, t("teaching.form_all_members"))),
      h("div", { class: "teach-inv-list" }, members));
  });
  const others = [...store.institutions.keys()].filter((id) => !inAlliance.has(id));
  if (others.length) {
    fieldsets.push(h("fieldset", { class: "teach-alliance" }, h("legend", {}, t("teaching.form_other")),
      h("div", { class: "teach-inv-list" }, others.map(box))));
  }
  const ids = () => [...new Set(boxes.filter((b) => b.checked).map((b) => Number(b.value)))];
  const sync = () => {
    const on = new Set(ids());
    for (const g of groups) {
      const n = g.ids.filter((m) => on.has(m)).length;
      g.all.checked = n > 0 && n === g.ids.length;
      g.all.indeterminate = n > 0 && n < g.ids.length;
    }
  };
  const el = h("fieldset", { class: "panel teach-invitations", dataset: { testid: "invitations" } },
    h("legend", {}, t("teaching.form_invited")),
    h("p", { class: "hint" }, t("teaching.form_invited_hint")),
    h("div", { class: "teach-alliances" }, fieldsets));
  el.addEventListener("change", (ev) => {
    const target = ev.target;
    if (target.dataset.all) {
      const g = groups.find((x) => x.all === target);
      for (const b of boxes) if (g.ids.includes(Number(b.value))) b.checked = target.checked;
    } else if (target.name === "invited") {
      for (const b of boxes) if (b.value === target.value) b.checked = target.checked;
    }
    sync();
  });
  sync();
  return { el, ids, sync };
}

export async function render({ root, params, user, navigate, isCurrent }) {
  const editing = params.id ? Number(params.id) : null;
  let s = null;
  if (editing) {
    mount(root, loading());
    s = await api.get(`/api/teaching-sessions/${editing}`);
    if (!isCurrent()) return;
    if (s.status !== "scheduled" || (s.can && !s.can.edit)) {
      mount(root, pageHeader(t("teaching.form_edit")), emptyState(t("teaching.form_only_scheduled"),
        h("a", { class: "btn", href: `#/teaching/${editing}` }, t("teaching.form_cancel"))));
      return;
    }
  }
  const errors = errorSlot();
  const nextHour = new Date(Math.ceil(Date.now() / HOUR) * HOUR + HOUR);
  const title = h("input", { name: "title", required: true, maxlength: 200, value: s ? s.title : "" });
  const kind = select({ name: "kind", required: true }, KINDS.map((k) => [k, kindText(k)]), s ? s.kind : "lecture");
  const start = h("input", { name: "start", type: "datetime-local", required: true, value: toLocalInput(s ? s.start : nextHour) });
  const end = h("input", { name: "end", type: "datetime-local", required: true, value: toLocalInput(s ? s.end : new Date(nextHour.getTime() + HOUR)) });
  const presenter = presenterSelect(user, s ? s.presenter : null);
  if (s) presenter.disabled = true;
  const description = h("textarea", { name: "description", rows: 4, maxlength: 4000 }, s && s.description ? s.description : "");
  const record = h("input", { type: "checkbox", name: "record", id: newId("rec"), checked: s ? Boolean(s.record) : true });
  const invitations = invitationPicker(s ? s.invited_institutions.map((i) => i.id) : []);
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, t(s ? "teaching.form_save" : "teaching.form_create"));

  const form = h("form", { class: "request-form teach-form", novalidate: true },
    h("fieldset", { class: "panel" }, h("legend", {}, t("teaching.form_what")),
      h("div", { class: "form-grid" },
        field(t("teaching.form_title"), title, { wide: true }),
        field(t("teaching.form_kind"), kind),
        field(t("teaching.form_presenter"), presenter)),
      field(t("teaching.form_description"), description, { wide: true }),
      h("p", { class: "check" }, record, h("label", { htmlFor: record.id }, t("teaching.form_record")))),
    h("fieldset", { class: "panel" }, h("legend", {}, t("teaching.form_when")),
      h("div", { class: "form-grid" }, field(t("teaching.form_start"), start), field(t("teaching.form_end"), end))),
    invitations.el,
    errors.el,
    h("div", { class: "form-actions" },
      h("a", { class: "btn", href: s ? `#/teaching/${s.id}` : "#/teaching" }, t("teaching.form_cancel")), submit));

  // A problem the browser can see is said before anything is sent.
  const check = () => {
    if (!form.reportValidity()) return false;
    if (end.value <= start.value) { errors.show(new ApiError(0, "validation_error", t("teaching.form_end_before_start"))); end.focus(); return false; }
    if (!invitations.ids().length) { errors.show(new ApiError(0, "validation_error", t("teaching.form_no_invited"))); return false; }
    return true;
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    errors.clear();
    if (!check()) return;
    const body = {
      title: title.value.trim(), start: fromLocalInput(start.value), end: fromLocalInput(end.value),
      invited_institution_ids: invitations.ids(), description: description.value.trim(),
      kind: kind.value, record: record.checked,
    };
    if (!s) body.presenter_id = Number(presenter.value);
    submit.disabled = true;
    try {
      const saved = s ? await request("PATCH", `/api/teaching-sessions/${s.id}`, { body }) : await api.post("/api/teaching-sessions", body);
      toast(s ? t("teaching.saved") : t("teaching.created", { title: saved.title }));
      navigate(`#/teaching/${saved.id}`);
    } catch (err) {
      errors.show(err);
    } finally {
      submit.disabled = false;
    }
  });

  mount(root, pageHeader(t(s ? "teaching.form_edit" : "teaching.form_new")), form);
  title.focus();
}
