// Import of institutions, departments and users for an alliance moving in (administrators):
// upload CSV or Excel files, check them (a dry run that lists every bad row), then import all
// or nothing and download each new user's one-time initial password once.

import { ApiError, session } from "../api.js";
import { field, h, mount } from "../dom.js";
import { has, t } from "../i18n.js";
import { store } from "../store.js";
import { busy, errorSlot, pageHeader, toast } from "../ui/components.js";

const TABLES = ["institutions", "departments", "users"];
const COLUMNS = {
  institutions: "name, level, local_name, parent, alliance",
  departments: "institution, name, specialty",
  users: "username, display_name, role, institution, department, specialties, title",
};

async function upload(path, files) {
  const form = new FormData();
  for (const [name, file] of files) form.append(name, file, file.name);
  let res;
  try {
    res = await fetch(path, { method: "POST", body: form, headers: { Authorization: `Bearer ${session.token}`, Accept: "application/json" } });
  } catch {
    throw new ApiError(0, "network_error", t("errors.network_error"));
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || "http_error", e.message || t("errors.http_status", { status: res.status }), e.details);
    err.fromServer = true;
    if (res.status === 401) window.dispatchEvent(new CustomEvent("yilian:unauthorized", { detail: err }));
    throw err;
  }
  return data;
}

const codeText = (code) => (has(`directory.imp_code_${code}`) ? t(`directory.imp_code_${code}`) : code);

function reportView(report) {
  const counts = h("p", { class: report.ok ? "alert alert-ok" : "alert alert-error", role: "status" },
    report.ok ? t("directory.imp_ok", report.counts) : t("directory.imp_problems", { n: report.errors.length }));
  if (report.ok) return counts;
  return [counts, h("div", { class: "table-wrap" }, h("table", { class: "table admin-table import-report" },
    h("caption", { class: "sr-only" }, t("directory.imp_report_caption")),
    h("thead", {}, h("tr", {}, ["imp_table", "imp_row", "imp_column", "imp_problem", "imp_message"].map((k) => h("th", { scope: "col" }, t(`directory.${k}`))))),
    h("tbody", {}, report.errors.map((e) => h("tr", { dataset: { row: e.row, code: e.code } },
      h("td", { dataset: { label: t("directory.imp_table") } }, t(`directory.imp_table_${e.table}`)),
      h("td", { dataset: { label: t("directory.imp_row") } }, e.row ? String(e.row) : "—"),
      h("td", { dataset: { label: t("directory.imp_column") } }, e.column ? h("code", {}, e.column) : "—"),
      h("td", { dataset: { label: t("directory.imp_problem") } }, codeText(e.code)),
      h("td", { dataset: { label: t("directory.imp_message") }, lang: "en", class: "muted small" }, e.message))))))];
}

function download(text, filename) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function render({ root }) {
  const inputs = Object.fromEntries([...TABLES, "workbook"].map((name) => [name, h("input", { type: "file", name, accept: ".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" })]));
  const report = h("div", { class: "import-result", "aria-live": "polite" });
  const errors = errorSlot();
  const check = h("button", { type: "button", class: "btn", id: "import-check" }, t("directory.imp_check"));
  const run = h("button", { type: "button", class: "btn btn-primary", id: "import-run", disabled: true }, t("directory.imp_run"));
  let checked = null; // the files of the last clean dry run
  const files = () => Object.entries(inputs).filter(([, el]) => el.files.length).map(([name, el]) => [name, el.files[0]]);
  for (const el of Object.values(inputs)) el.addEventListener("change", () => { run.disabled = true; checked = null; mount(report); });
  check.addEventListener("click", () => busy(check, async () => {
    const chosen = files();
    if (!chosen.length) throw new ApiError(0, "import_no_file", t("directory.imp_no_file"));
    const result = await upload("/api/imports/dry-run", chosen);
    mount(report, reportView(result));
    checked = result.ok ? chosen : null;
    run.disabled = !result.ok;
  }, errors));
  run.addEventListener("click", () => busy(run, async () => {
    try {
      const result = await upload("/api/imports", checked || files());
      run.disabled = true;
      checked = null;
      store.loaded = false;
      const save = h("button", { type: "button", class: "btn btn-primary", id: "import-passwords", onclick: () => download(result.passwords_csv, "yilian-initial-passwords.csv") }, t("directory.imp_download"));
      mount(report, h("div", { class: "alert alert-ok", role: "status" }, t("directory.imp_done", result.counts)),
        result.counts.users ? [h("p", { class: "warn-text" }, t("directory.imp_passwords_once")), save] : null);
      toast(t("directory.imp_done_toast"));
    } catch (err) {
      if (err.code === "import_invalid" && err.details && err.details.errors) { mount(report, reportView(err.details)); return; }
      throw err;
    }
  }, errors));
  mount(root, pageHeader(t("directory.imp_title")),
    h("p", { class: "muted" }, t("directory.imp_intro")),
    h("form", { class: "panel import-form", onsubmit: (ev) => ev.preventDefault() },
      h("div", { class: "form-grid" }, TABLES.map((name) => field(t(`directory.imp_table_${name}`), inputs[name], { hint: COLUMNS[name] }))),
      h("p", { class: "muted small" }, t("directory.imp_or_workbook")),
      field(t("directory.imp_workbook"), inputs.workbook, { hint: t("directory.imp_workbook_hint") }),
      errors.el,
      h("div", { class: "form-actions" }, check, run)),
    report);
}
