// Accounts (administrators: every institution; coordinators: their alliance's): search by
// name or username, role, institution and status; 50 a page; each opens its edit screen.

import { api } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { term } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";

export const ROLES = ["village_doctor", "township_doctor", "specialist", "coordinator", "admin"];
const PAGE = 50;

/** The roles this user may give: up to their own (an administrator: all). */
export const assignableRoles = (user) => ROLES.slice(0, user.role === "admin" ? ROLES.length : ROLES.indexOf(user.role) + 1);

/** The institutions whose accounts this user manages, as [id, name] sorted by name. */
export function managedInstitutions(user) {
  const ids = user.role === "admin" ? [...store.institutions.keys()] : [...store.partnerIds()];
  return ids.filter((id) => store.institutions.has(id))
    .map((id) => [id, store.institutionName(id)])
    .sort((a, b) => a[1].localeCompare(b[1]));
}

/** The account's state as badges: inactive, locked, must choose a password. */
export function accountBadges(u) {
  return [
    !u.active ? h("span", { class: "badge status-cancelled", dataset: { state: "inactive" } }, t("accounts.state_inactive")) : null,
    u.locked_until ? h("span", { class: "badge status-declined", dataset: { state: "locked" } }, t("accounts.state_locked")) : null,
    u.active && u.must_change_password ? h("span", { class: "badge status-requested", dataset: { state: "must_change" } }, t("accounts.state_must_change")) : null,
    u.active && !u.locked_until && !u.must_change_password ? h("span", { class: "badge status-completed" }, t("accounts.state_active")) : null,
  ];
}

export async function render({ root, query, user, isCurrent }) {
  const offset = Math.max(0, Number(query.offset) || 0);
  const q = h("input", { name: "q", type: "search", value: query.q || "", placeholder: t("accounts.search_placeholder") });
  const role = select({ name: "role" }, [["", t("accounts.any_role")], ...ROLES.map((r) => [r, term("role", r)])], query.role || "");
  const inst = select({ name: "institution_id" }, [["", t("accounts.any_institution")], ...managedInstitutions(user)], query.institution_id || "");
  const active = select({ name: "active" }, [["", t("accounts.any_state")], ["true", t("accounts.state_active")], ["false", t("accounts.state_inactive")]], query.active || "");
  const params = (extra = {}) => {
    const p = new URLSearchParams();
    for (const [k, el] of [["q", q], ["role", role], ["institution_id", inst], ["active", active]]) if (el.value) p.set(k, el.value.trim());
    for (const [k, v] of Object.entries(extra)) if (v) p.set(k, v);
    return p;
  };
  const go = (extra) => { window.location.hash = `#/users?${params(extra)}`; };
  const form = h("form", { class: "filters", role: "search", "aria-label": t("accounts.filters_label") },
    field(t("accounts.search"), q), field(t("accounts.role"), role), field(t("accounts.institution"), inst), field(t("accounts.state"), active),
    h("div", { class: "field" }, h("span", { class: "sr-only" }, t("accounts.search")), h("button", { type: "submit", class: "btn btn-primary" }, t("accounts.search"))));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); go(); });
  for (const el of [role, inst, active]) el.addEventListener("change", () => go());
  const body = h("div", { "aria-live": "polite" }, loading());
  mount(root,
    pageHeader(t("accounts.users_title"), h("a", { class: "btn btn-primary", href: "#/users/new" }, t("accounts.new_user"))),
    form, body);

  let rows;
  try {
    const filters = Object.fromEntries(params());
    rows = await api.get("/api/users", { ...filters, limit: PAGE, offset });
  } catch (err) {
    if (isCurrent()) mount(body, errorBox(err));
    return;
  }
  if (!isCurrent()) return;
  if (!rows.length) {
    mount(body, emptyState(t("accounts.no_users")));
    return;
  }
  const pager = h("div", { class: "form-actions" },
    offset > 0 ? h("a", { class: "btn", href: `#/users?${params({ offset: String(Math.max(0, offset - PAGE)) })}` }, t("accounts.previous")) : null,
    rows.length === PAGE ? h("a", { class: "btn", href: `#/users?${params({ offset: String(offset + PAGE) })}` }, t("accounts.next")) : null);
  mount(body,
    h("p", { class: "muted result-count" }, t("accounts.showing", { from: offset + 1, to: offset + rows.length })),
    h("div", { class: "table-wrap" }, h("table", { class: "table users" },
      h("caption", { class: "sr-only" }, t("accounts.users_title")),
      h("thead", {}, h("tr", {}, [t("accounts.display_name"), t("accounts.role"), t("accounts.institution"), t("accounts.state")]
        .map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows.map((u) => h("tr", { dataset: { user: u.id, username: u.username } },
        h("td", {}, h("a", { href: `#/users/${u.id}`, class: "strong" }, u.display_name),
          h("div", { class: "muted small" }, h("code", { "aria-label": t("accounts.username") }, u.username))),
        h("td", {}, term("role", u.role), u.title ? h("div", { class: "muted small" }, u.title) : null),
        h("td", {}, store.institutionName(u.institution_id)),
        h("td", {}, h("div", { class: "tags" }, accountBadges(u)))))))),
    pager);
}
