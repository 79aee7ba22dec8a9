// The audit log (administrators): who did what to which record, searchable by user, patient,
// institution, action and period (days in Shanghai time), newest first, 100 a page; the same
// search as a CSV file (UTF-8 with BOM) for the compliance office.

import { api, session } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { TZ_OFFSET, fmtDateTimeYear } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { busy, emptyState, errorBox, loading, pageHeader } from "../ui/components.js";

const PAGE = 100;
export const ACTIONS = ["login", "login_failed", "account_locked", "create_user", "update_user", "change_password",
  "end_session", "end_other_sessions", "create_institution", "denied", "audit_search", "audit_export"];

/** The query the form describes (dates as the start of that day, and of the day after). */
function filters(c) {
  const q = {};
  for (const key of ["user_id", "patient_id", "institution_id", "action"]) if (c[key].value.trim()) q[key] = c[key].value.trim();
  if (c.from.value) q.from = `${c.from.value}T00:00:00${TZ_OFFSET}`;
  if (c.to.value) {
    const next = new Date(`${c.to.value}T00:00:00${TZ_OFFSET}`);
    next.setUTCDate(next.getUTCDate() + 1);
    q.to = next.toISOString();
  }
  return q;
}

async function downloadCsv(query) {
  const url = new URL("/api/audit", window.location.origin);
  for (const [k, v] of Object.entries({ ...query, format: "csv" })) url.searchParams.set(k, v);
  const res = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` } });
  if (!res.ok) {
    const b = await res.json().catch(() => ({}));
    throw Object.assign(new Error((b.error && b.error.message) || res.statusText), { code: b.error && b.error.code, fromServer: true, status: res.status });
  }
  const href = URL.createObjectURL(await res.blob());
  const a = h("a", { href, download: "yilian-audit.csv", hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

const actionLabel = (a) => (ACTIONS.includes(a) ? t(`accounts.action_${a}`) : a);

function row(e) {
  const detail = e.detail ? JSON.stringify(e.detail) : "";
  return h("tr", { dataset: { entry: e.id, action: e.action } },
    h("td", { style: { whiteSpace: "nowrap" } }, fmtDateTimeYear(e.at)),
    h("td", {}, e.username || (e.user_id ? `#${e.user_id}` : t("accounts.system"))),
    h("td", {}, e.institution_id ? store.institutionName(e.institution_id) : "—"),
    h("td", {}, actionLabel(e.action)),
    h("td", {}, `${e.resource_type}${e.resource_id ? ` ${e.resource_id}` : ""}`),
    h("td", {}, e.patient_id ? String(e.patient_id) : "—"),
    h("td", {}, e.ip || "—"),
    h("td", {}, detail ? h("code", { class: "small prewrap clamp", title: detail }, detail) : ""));
}

export async function render({ root, isCurrent }) {
  const c = {
    user_id: h("input", { name: "user_id", inputmode: "numeric", pattern: "[0-9]*" }),
    patient_id: h("input", { name: "patient_id", inputmode: "numeric", pattern: "[0-9]*" }),
    institution_id: select({ name: "institution_id" }, [["", t("accounts.any_institution")],
      ...[...store.institutions.keys()].map((id) => [id, store.institutionName(id)]).sort((a, b) => a[1].localeCompare(b[1]))]),
    action: select({ name: "action" }, [["", t("accounts.any_action")], ...ACTIONS.map((a) => [a, actionLabel(a)])]),
    from: h("input", { name: "from", type: "date" }),
    to: h("input", { name: "to", type: "date" }),
  };
  const body = h("div", { "aria-live": "polite" });
  const more = h("button", { type: "button", class: "btn", hidden: true }, t("accounts.older"));
  const csv = h("button", { type: "button", class: "btn", dataset: { action: "csv" } }, t("accounts.export_csv"));
  let rows = [];
  let tbody = null;

  async function load(append) {
    const query = { ...filters(c), limit: PAGE };
    if (append && rows.length) query.before_id = rows[rows.length - 1].id;
    else mount(body, loading());
    let page;
    try {
      page = await api.get("/api/audit", query);
    } catch (err) {
      if (isCurrent()) mount(body, errorBox(err));
      return;
    }
    if (!isCurrent()) return;
    rows = append ? rows.concat(page) : page;
    more.hidden = page.length < PAGE;
    if (!rows.length) { mount(body, emptyState(t("accounts.audit_empty"))); return; }
    if (!append || !tbody) {
      tbody = h("tbody", {});
      mount(body, h("div", { class: "table-wrap" }, h("table", { class: "table audit" },
        h("caption", { class: "sr-only" }, t("accounts.audit_title")),
        h("thead", {}, h("tr", {}, [t("accounts.col_time"), t("accounts.col_user"), t("accounts.institution"), t("accounts.col_action"),
          t("accounts.col_resource"), t("accounts.col_patient"), t("accounts.col_address"), t("accounts.col_detail")].map((x) => h("th", { scope: "col" }, x)))),
        tbody)));
    }
    tbody.append(...page.map(row));
  }

  const form = h("form", { class: "filters", role: "search", "aria-label": t("accounts.filters_label") },
    field(t("accounts.user_id"), c.user_id), field(t("accounts.patient_id"), c.patient_id),
    field(t("accounts.institution"), c.institution_id), field(t("accounts.col_action"), c.action),
    field(t("accounts.from"), c.from), field(t("accounts.to"), c.to),
    h("div", { class: "field" }, h("span", { class: "sr-only" }, t("accounts.search")), h("button", { type: "submit", class: "btn btn-primary" }, t("accounts.search"))));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); load(false); });
  more.addEventListener("click", () => busy(more, () => load(true)));
  csv.addEventListener("click", () => busy(csv, () => downloadCsv(filters(c))));
  mount(root, pageHeader(t("accounts.audit_title"), csv), h("p", { class: "muted" }, t("accounts.audit_intro")), form, body,
    h("div", { class: "form-actions" }, more));
  await load(false);
}
