// Create an account (#/users/new) or change one (#/users/{id}): name, role (up to the
// manager's own), institution (theirs to manage), specialties for specialists, title,
// department; on an existing account also activation, a password reset (the temporary
// password is shown once) and unlocking after too many wrong passwords.

import { api, request } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { fmtDateTimeYear, specialtyLabel, term } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { busy, dl, errorBox, errorSlot, loading, pageHeader, toast } from "../ui/components.js";
import { confirmDialog } from "../ui/dialog.js";
import { ROLES, accountBadges, assignableRoles, managedInstitutions } from "./users.js";
import { MIN_LENGTH } from "./password.js";

const codes = (text) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

function fields(user, existing) {
  const roles = assignableRoles(user);
  const c = {
    username: h("input", { name: "username", required: true, autocapitalize: "none", spellcheck: "false", pattern: "[a-z0-9][a-z0-9._\\-]{2,63}", maxlength: 64 }),
    display_name: h("input", { name: "display_name", required: true, maxlength: 120, value: existing ? existing.display_name : "" }),
    role: select({ name: "role", required: true }, roles.map((r) => [r, term("role", r)]), existing ? existing.role : "township_doctor"),
    institution_id: select({ name: "institution_id", required: true }, managedInstitutions(user), existing ? existing.institution_id : undefined),
    specialties: h("input", { name: "specialties", list: "specialty-codes", value: existing ? (existing.specialties || []).join(", ") : "" }),
    title: h("input", { name: "title", maxlength: 64, value: existing && existing.title ? existing.title : "" }),
    department: h("input", { name: "department", maxlength: 120 }),
    password: h("input", { name: "password", type: "text", autocomplete: "off", required: true, minlength: MIN_LENGTH, spellcheck: "false" }),
    active: h("input", { name: "active", type: "checkbox", checked: existing ? existing.active : true }),
  };
  const list = h("datalist", { id: "specialty-codes" }, store.assignableSpecialties().map((s) => h("option", { value: s }, specialtyLabel(s))));
  const specialtyField = field(t("accounts.specialties"), c.specialties, { hint: t("accounts.specialties_hint") });
  const showSpecialties = () => { specialtyField.hidden = c.role.value !== "specialist"; };
  c.role.addEventListener("change", showSpecialties);
  showSpecialties();
  const grid = [
    existing ? null : field(t("accounts.username"), c.username, { hint: t("accounts.username_hint") }),
    field(t("accounts.display_name"), c.display_name),
    field(t("accounts.role"), c.role),
    field(t("accounts.institution"), c.institution_id),
    specialtyField, list,
    field(t("accounts.title"), c.title, { hint: t("accounts.title_hint") }),
    field(t("accounts.department"), c.department, { hint: existing ? t("accounts.department_keep_hint") : t("accounts.department_hint") }),
    existing ? null : field(t("accounts.temporary_password"), c.password, { hint: t("accounts.temporary_hint", { n: MIN_LENGTH }) }),
    existing ? h("div", { class: "field field-wide" }, h("label", { class: "check" }, c.active, h("span", {}, t("accounts.active_label")))) : null,
  ];
  return { c, grid };
}

function body(c, existing) {
  const out = {};
  const put = (key, value, before) => { if (!existing || JSON.stringify(value) !== JSON.stringify(before)) out[key] = value; };
  if (!existing) {
    out.username = c.username.value.trim().toLowerCase();
    out.password = c.password.value;
  }
  put("display_name", c.display_name.value.trim(), existing && existing.display_name);
  put("role", c.role.value, existing && existing.role);
  put("institution_id", Number(c.institution_id.value), existing && existing.institution_id);
  const specialties = c.role.value === "specialist" ? codes(c.specialties.value) : [];
  put("specialties", specialties, existing && existing.specialties);
  const title = c.title.value.trim() || null;
  put("title", title, existing && existing.title);
  if (c.department.value.trim()) out.department = c.department.value.trim();
  if (existing && c.active.checked !== existing.active) out.active = c.active.checked;
  return out;
}

function adminPanel(existing, reload) {
  const shown = h("div", { "aria-live": "polite" });
  const reset = h("button", { type: "button", class: "btn", dataset: { action: "reset-password" } }, t("accounts.reset_password"));
  reset.addEventListener("click", () => confirmDialog({
    title: t("accounts.reset_password"), message: t("accounts.reset_confirm", { name: existing.display_name }),
    submitLabel: t("accounts.reset_password"),
    onSubmit: async () => {
      const res = await request("PATCH", `/api/users/${existing.id}`, { body: { reset_password: true } });
      mount(shown, h("div", { class: "alert alert-info", role: "status", dataset: { temporary: "" } },
        h("p", {}, t("accounts.temporary_shown_once")),
        h("p", {}, h("code", { class: "strong", dataset: { password: "" } }, res.temporary_password))));
    },
  }));
  const unlock = existing.locked_until ? h("button", { type: "button", class: "btn", dataset: { action: "unlock" } }, t("accounts.unlock")) : null;
  if (unlock) {
    unlock.addEventListener("click", () => busy(unlock, async () => {
      await request("PATCH", `/api/users/${existing.id}`, { body: { unlock: true } });
      toast(t("accounts.unlocked"));
      await reload();
    }));
  }
  return h("section", { class: "panel request-form", "aria-labelledby": "user-admin-title" },
    h("h2", { id: "user-admin-title" }, t("accounts.access_title")),
    dl([[t("accounts.state"), h("span", { class: "tags" }, accountBadges(existing))],
      [t("accounts.created"), fmtDateTimeYear(existing.created_at)],
      [t("accounts.password_changed_at"), existing.password_changed_at ? fmtDateTimeYear(existing.password_changed_at) : t("accounts.never")],
      existing.locked_until ? [t("accounts.locked_until"), fmtDateTimeYear(existing.locked_until)] : null]),
    h("div", { class: "page-actions" }, reset, unlock),
    shown);
}

export async function render({ root, params, user, navigate, isCurrent }) {
  const id = params.id ? Number(params.id) : null;
  let existing = null;
  if (id) {
    mount(root, loading());
    try {
      existing = await api.get(`/api/users/${id}`);
    } catch (err) {
      if (isCurrent()) mount(root, pageHeader(t("accounts.edit_user")), errorBox(err), h("a", { class: "btn", href: "#/users" }, t("accounts.back")));
      return;
    }
    if (!isCurrent()) return;
  }
  // A coordinator may look at an administrator's account of their alliance, not change it.
  if (existing && user.role !== "admin" && ROLES.indexOf(existing.role) > ROLES.indexOf(user.role)) {
    mount(root, pageHeader(t("accounts.edit_title", { name: existing.display_name })),
      h("div", { class: "alert alert-info", role: "status" }, t("accounts.read_only")),
      h("section", { class: "panel request-form" }, dl([[t("accounts.username"), existing.username],
        [t("accounts.role"), term("role", existing.role)], [t("accounts.institution"), store.institutionName(existing.institution_id)],
        [t("accounts.state"), h("span", { class: "tags" }, accountBadges(existing))]])),
      h("a", { class: "btn", href: "#/users" }, t("accounts.back")));
    return;
  }
  const errors = errorSlot();
  const { c, grid } = fields(user, existing);
  if (existing && existing.id === user.id) {
    // Nobody changes their own role, institution or activation (another administrator may).
    for (const el of [c.role, c.institution_id, c.active]) el.disabled = true;
  }
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, existing ? t("accounts.save") : t("accounts.create"));
  const form = h("form", { class: "panel request-form", dataset: { form: "user" } },
    h("div", { class: "form-grid" }, grid), errors.el,
    h("div", { class: "form-actions" }, h("a", { class: "btn", href: "#/users" }, t("accounts.back")), submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      const payload = body(c, existing);
      if (existing) {
        if (!Object.keys(payload).length) { toast(t("accounts.nothing_changed")); return; }
        await request("PATCH", `/api/users/${existing.id}`, { body: payload });
        toast(t("accounts.saved"));
        navigate(`#/users/${existing.id}`);
      } else {
        const made = await api.post("/api/users", payload);
        toast(t("accounts.created_toast", { username: made.username }));
        navigate(`#/users/${made.id}`);
      }
    }, errors);
  });
  const reload = () => render({ root, params, user, navigate, isCurrent });
  mount(root,
    pageHeader(existing ? t("accounts.edit_title", { name: existing.display_name }) : t("accounts.new_user")),
    existing ? h("p", { class: "muted" }, h("code", {}, existing.username)) : h("p", { class: "muted" }, t("accounts.new_intro")),
    form,
    existing ? adminPanel(existing, reload) : null);
}
