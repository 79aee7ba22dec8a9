// Who watched a session: one row per person (reconnects merged by the server: first join, last
// leave, minutes), person-times per institution, and the CSV for the training records.

import { api, session } from "../api.js";
import { h, mount } from "../dom.js";
import { fmtDateTime } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { busy, emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { kindBadge, teachingStatus, timeRange } from "../features/teaching-ui.js";

const instName = (id, fallback) => (store.institutions.has(id) ? store.institutionName(id) : fallback || "");
const minutes = (m) => (Math.round((Number(m) || 0) * 10) / 10).toString();

/** A table; the last `numeric` columns hold numbers (right-aligned, heading included). */
function table(caption, head, rows, numeric = 1) {
  return h("table", { class: "table teach-table" },
    h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, head.map((x, i) => h("th", { scope: "col", class: i >= head.length - numeric ? "num" : null }, x)))),
    h("tbody", {}, rows));
}

/** Fetch the CSV with the bearer token and hand it to the browser as a download. */
async function downloadCsv(id) {
  const res = await fetch(`/api/teaching-sessions/${id}/attendance?format=csv`, { headers: { Authorization: `Bearer ${session.token}` } });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw Object.assign(new Error((body.error && body.error.message) || res.statusText), { code: body.error && body.error.code, fromServer: true, status: res.status });
  }
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: `teaching-${id}-attendance.csv`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function render({ root, params, isCurrent }) {
  const id = Number(params.id);
  mount(root, loading());
  let s;
  let people;
  let byInst;
  try {
    [s, people, byInst] = await Promise.all([
      api.get(`/api/teaching-sessions/${id}`),
      api.get(`/api/teaching-sessions/${id}/attendance`),
      api.get(`/api/teaching-sessions/${id}/attendance/by-institution`),
    ]);
  } catch (err) {
    if (!isCurrent()) return;
    mount(root, pageHeader(t("teaching.attendance")), errorBox(err), h("a", { class: "btn", href: `#/teaching/${id}` }, t("teaching.att_back")));
    return;
  }
  if (!isCurrent()) return;
  const csv = h("button", { type: "button", class: "btn", dataset: { action: "csv" } }, t("teaching.att_csv"));
  csv.addEventListener("click", () => busy(csv, () => downloadCsv(id)));
  const total = people.reduce((sum, p) => sum + (Number(p.minutes) || 0), 0);
  mount(root,
    pageHeader(t("teaching.attendance_title", { title: s.title }),
      h("a", { class: "btn", href: `#/teaching/${id}` }, t("teaching.att_back")), csv),
    h("div", { class: "summary-strip" }, teachingStatus(s.status), kindBadge(s.kind), h("span", {}, timeRange(s))),
    people.length ? [
      h("section", { class: "panel", "aria-labelledby": "att-inst-title" },
        h("h2", { id: "att-inst-title" }, t("teaching.att_by_institution")),
        table(t("teaching.att_by_institution"), [t("teaching.att_institution"), t("teaching.att_person_times"), t("teaching.att_minutes")],
          byInst.map((r) => h("tr", { dataset: { institution: r.institution_id } },
            h("td", {}, instName(r.institution_id, r.name)), h("td", { class: "num" }, String(r.person_times)), h("td", { class: "num" }, minutes(r.minutes)))), 2)),
      h("section", { class: "panel", "aria-labelledby": "att-person-title" },
        h("h2", { id: "att-person-title" }, t("teaching.att_by_person")),
        h("p", { class: "muted" }, t("teaching.att_total", { people: people.length, minutes: minutes(total) })),
        table(t("teaching.att_by_person"), [t("teaching.att_name"), t("teaching.att_institution"), t("teaching.att_joined"), t("teaching.att_left"), t("teaching.att_minutes")],
          people.map((p) => h("tr", { dataset: { user: p.user_id } },
            h("td", {}, p.display_name), h("td", {}, instName(p.institution_id, p.institution_name)),
            h("td", {}, fmtDateTime(p.joined_at)), h("td", {}, p.left_at ? fmtDateTime(p.left_at) : t("teaching.att_still_here")),
            h("td", { class: "num" }, minutes(p.minutes)))))),
    ] : emptyState(t("teaching.att_empty")));
}
