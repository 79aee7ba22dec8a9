// Monthly outpatient visit totals (#/stats/visits, coordinators and admins): the numbers the
// grassroots share is computed from. A year of one alliance's institutions as a grid to type
// into, or a CSV / Excel file to import; the server takes a batch whole or not at all and
// lists every bad row.

import { api, ApiError, session } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { busy, errorBox, loading, pageHeader, toast } from "../ui/components.js";
import { today } from "./stats-period.js";

const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const pad = (n) => String(n).padStart(2, "0");

function alliancesFor(user) {
  return user.role === "admin" ? store.alliances : store.myAlliances();
}

/** Send a file to the import route; resolves to the JSON answer, rejects with ApiError. */
async function importFile(file) {
  const type = /\.xlsx$/i.test(file.name) ? XLSX : "text/csv";
  const res = await fetch("/api/stats/visits/import", {
    method: "POST", body: file,
    headers: { Authorization: `Bearer ${session.token}`, "Content-Type": type, Accept: "application/json" },
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = body.error || {};
    throw Object.assign(new ApiError(res.status, e.code || "error", e.message || res.statusText, e.details), { fromServer: true });
  }
  return body;
}

/** The error, its bad rows listed by row number (the generic box would drop the numbers). */
function rowErrors(err) {
  const list = (err.details && err.details.errors) || [];
  if (!list.some((e) => e.loc && e.loc[0] === "row")) return errorBox(err);
  return [errorBox(Object.assign(new Error(err.message), { code: err.code, fromServer: true })), h("ul", { class: "stats-import-errors", id: "stats-import-errors" },
    list.map((e) => h("li", {}, e.loc && e.loc[0] === "row"
      ? t("stats.import_row_error", { row: e.loc[1], column: e.loc[2], msg: e.msg }) : e.msg)))];
}

export async function render({ root, query, isCurrent }) {
  const user = session.user;
  const alliances = alliancesFor(user);
  const allianceId = query.alliance || (alliances[0] ? String(alliances[0].id) : "");
  const year = /^\d{4}$/.test(query.year || "") ? Number(query.year) : today().y;
  const go = (a, y) => { window.location.hash = `#/stats/visits?alliance=${a}&year=${y}`; };
  const header = pageHeader(t("stats.visits_title"), h("a", { class: "btn", href: "#/stats" }, t("stats.back")));
  const allianceSelect = h("select", { id: "visits-alliance" },
    alliances.map((a) => h("option", { value: String(a.id), selected: String(a.id) === allianceId }, a.name)));
  allianceSelect.addEventListener("change", () => go(allianceSelect.value, year));
  const yearSelect = h("select", { id: "visits-year" },
    Array.from({ length: 10 }, (_, i) => today().y - i).map((y) => h("option", { value: String(y), selected: y === year }, t("stats.year_n", { n: y }))));
  yearSelect.addEventListener("change", () => go(allianceId, yearSelect.value));
  const controls = h("section", { class: "panel stats-visits-form" },
    h("label", { class: "stats-control" }, h("span", {}, t("stats.alliance")), allianceSelect),
    h("label", { class: "stats-control" }, h("span", {}, t("stats.period_year")), yearSelect));
  mount(root, header, controls, loading());
  const months = Array.from({ length: 12 }, (_, i) => `${year}-${pad(i + 1)}`);
  let entered;
  try {
    entered = allianceId ? await api.get("/api/stats/visits", { alliance_id: allianceId, from_month: months[0], to_month: months[11] }) : [];
  } catch (err) {
    if (isCurrent()) mount(root, header, controls, errorBox(err));
    return;
  }
  if (!isCurrent()) return;
  const members = (alliances.find((a) => String(a.id) === allianceId) || { member_ids: [] }).member_ids;
  const value = new Map(entered.map((v) => [`${v.institution_id}|${v.month}`, v.visits]));
  const inputs = [];
  const grid = h("table", { class: "table stats-table stats-visits-table", id: "visits-grid" },
    h("caption", { class: "sr-only" }, t("stats.visits_title")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("stats.institution")),
      months.map((m) => h("th", { scope: "col", class: "num" }, t("stats.month_n", { n: Number(m.slice(5)) }))))),
    h("tbody", {}, members.map((id) => h("tr", { dataset: { institution: id } },
      h("th", { scope: "row" }, store.institutionName(id)),
      months.map((m) => {
        const old = value.get(`${id}|${m}`);
        const input = h("input", { type: "number", min: "0", step: "1", inputmode: "numeric", value: old ?? "",
          "aria-label": `${store.institutionName(id)} ${m}`, dataset: { month: m } });
        inputs.push({ input, id, month: m, old });
        return h("td", { class: "num" }, input);
      })))));
  const slot = h("div", {});
  const save = h("button", { type: "button", class: "btn btn-primary", id: "visits-save" }, t("stats.save"));
  save.addEventListener("click", () => busy(save, async () => {
    const totals = inputs.filter((x) => x.input.value !== "" && Number(x.input.value) !== x.old)
      .map((x) => ({ institution_id: x.id, month: x.month, visits: Number(x.input.value) }));
    mount(slot);
    if (!totals.length) { toast(t("stats.nothing_changed")); return; }
    try {
      await api.put("/api/stats/visits", { totals });
    } catch (err) {
      mount(slot, rowErrors(err));
      return;
    }
    toast(t("stats.saved", { n: totals.length }));
    for (const x of inputs) if (x.input.value !== "") x.old = Number(x.input.value);
  }));
  const file = h("input", { type: "file", id: "visits-file", accept: ".csv,.xlsx,text/csv," + XLSX });
  const upload = h("button", { type: "button", class: "btn", id: "visits-import" }, t("stats.import"));
  upload.addEventListener("click", () => busy(upload, async () => {
    mount(slot);
    if (!file.files.length) { toast(t("stats.choose_file"), "error"); return; }
    try {
      const done = await importFile(file.files[0]);
      toast(t("stats.imported", { n: done.imported }));
      go(allianceId, year);
    } catch (err) {
      mount(slot, rowErrors(err));
    }
  }));
  mount(root, header, controls,
    h("section", { class: "panel", "aria-labelledby": "visits-grid-title" },
      h("h2", { id: "visits-grid-title" }, t("stats.visits_grid", { year })),
      h("p", { class: "muted" }, t("stats.visits_help")),
      h("div", { class: "stats-scroll" }, grid), h("p", {}, save)),
    h("section", { class: "panel", "aria-labelledby": "visits-import-title" },
      h("h2", { id: "visits-import-title" }, t("stats.import_title")),
      h("p", { class: "muted" }, t("stats.import_help")),
      h("div", { class: "stats-visits-form" }, file, upload)),
    slot);
}
