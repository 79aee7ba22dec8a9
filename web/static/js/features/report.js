// The consultation report (会诊意见 / 诊断报告): view the current and earlier versions; the
// expert writes a draft, signs it (frozen), and corrects a signed report with a new version.

import { ApiError, api } from "../api.js";
import { field, h, mount } from "../dom.js";
import { fmtDateTimeYear } from "../format.js";
import { store } from "../store.js";
import { busy, errorSlot, loading, toast } from "../ui/components.js";
import { confirmDialog } from "../ui/dialog.js";

const SECTIONS = [
  ["findings", "Findings", "检查所见"],
  ["impression", "Impression", "诊断意见"],
  ["recommendations", "Recommendations", "处理建议"],
];

function versionMeta(v, c) {
  return v.signed
    ? `Version ${v.version} · signed by ${store.personName(v.signed_by_id, c)} on ${fmtDateTimeYear(v.signed_at)}`
    : `Version ${v.version} · draft by ${store.personName(v.author_id, c)}, not signed`;
}

function versionView(v, c) {
  return h("div", { class: "report-version" },
    SECTIONS.map(([key, en, zh]) => h("section", { class: "report-section" },
      h("h4", {}, en, " ", h("span", { class: "zh" }, zh)),
      h("p", { class: ["prewrap", !v[key] && "muted"], dataset: { field: key } }, v[key] || "—"))));
}

/** Renders the report panel into `el`; `onChange()` is called when the report state changes. */
export async function renderReport(el, c, { canWrite, onChange }) {
  mount(el, loading("Loading report… 正在加载报告"));
  let report = null;
  if (c.report_status !== "none") {
    try {
      report = await api.get(`/api/consultations/${c.id}/report`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }
  // Only the expert sees an unsigned draft: the server gives everyone else signed versions only.
  const visible = report ? report.versions : [];
  const current = visible.length ? visible[visible.length - 1] : null;
  const earlier = visible.slice(0, -1).reverse();
  const drafting = !canWrite && c.report_status === "draft";
  const parts = [];

  if (current) {
    parts.push(h("div", { class: ["report-current", current.signed ? "signed" : "draft"] },
      h("p", { class: "report-meta" },
        h("span", { class: `badge ${current.signed ? "status-completed" : "status-requested"}` }, current.signed ? "Signed 已签署" : "Draft 草稿"),
        " ", versionMeta(current, c)),
      versionView(current, c)));
  } else if (!canWrite) {
    parts.push(h("p", { class: "muted" }, drafting
      ? "The expert is writing the report; it appears here once signed. 专家正在撰写报告，签署后可见。"
      : "The expert has not written a report yet. 专家尚未出具报告。"));
  }
  if (current && drafting) {
    parts.push(h("p", { class: "muted small" }, "The expert is drafting a correction of this report. 专家正在更正报告。"));
  }

  if (canWrite) {
    const editing = !current || !current.signed;
    const editor = reportEditor(c, current, async () => onChange());
    if (editing) parts.push(editor);
    else {
      editor.hidden = true;
      const correct = h("button", { type: "button", class: "btn", onclick: () => {
        editor.hidden = false;
        correct.hidden = true;
        editor.querySelector("textarea").focus();
      } }, "Write a correction 更正报告");
      parts.push(h("div", { class: "report-correct" },
        h("p", { class: "muted small" }, "A signed report is frozen. A correction becomes a new signed version; the earlier version is kept."),
        correct), editor);
    }
  }

  if (earlier.length) {
    parts.push(h("div", { class: "report-history" },
      h("h4", {}, "Earlier versions ", h("span", { class: "zh" }, "历史版本")),
      earlier.map((v) => h("details", { class: "version", dataset: { version: v.version } },
        h("summary", {}, versionMeta(v, c)), versionView(v, c)))));
  }
  mount(el, parts);
}

function reportEditor(c, current, onChange) {
  const errors = errorSlot();
  const draft = current && !current.signed;
  const correcting = current && current.signed;
  const inputs = Object.fromEntries(SECTIONS.map(([key]) => [key, h("textarea", {
    name: key, rows: key === "impression" ? 3 : 5, maxlength: key === "impression" ? 4000 : 20000,
    required: key === "impression", value: current ? current[key] : "",
  })]));
  const status = h("p", { class: "muted small", role: "status" },
    draft ? `Draft saved ${fmtDateTimeYear(current.created_at)}` : correcting ? "Correcting the signed report — this becomes a new version." : "");
  const body = () => Object.fromEntries(SECTIONS.map(([key]) => [key, inputs[key].value.trim()]));
  const save = async () => {
    const b = body();
    if (!b.impression) throw new ApiError(0, "validation_error", "The impression is required. 请填写诊断意见。");
    return api.post(`/api/consultations/${c.id}/report`, b);
  };
  const saveBtn = h("button", { type: "button", class: "btn", onclick: () => busy(saveBtn, async () => {
    await save();
    toast("Draft saved. 草稿已保存");
    await onChange();
  }, errors) }, "Save draft 保存草稿");
  const signBtn = h("button", { type: "button", class: "btn btn-primary", onclick: () => busy(signBtn, async () => {
    const b = body();
    if (!b.impression) throw new ApiError(0, "validation_error", "The impression is required. 请填写诊断意见。");
    const signed = await confirmDialog({
      title: "Sign the report 签署报告",
      message: "Signing freezes this version of the report. Later changes are made as a new, separately signed correction. 签署后本版本不可修改。",
      submitLabel: "Sign 签署",
      onSubmit: async () => {
        await save();
        return api.post(`/api/consultations/${c.id}/report/sign`);
      },
    });
    if (signed) {
      toast(`Report version ${signed.current.version} signed. 报告已签署`);
      await onChange();
    }
  }, errors) }, "Sign report 签署报告");
  return h("form", { class: "report-editor", "aria-label": "Report editor 报告编辑", onsubmit: (e) => e.preventDefault(),
    // Unsaved text: the page must not be redrawn under the expert's hands.
    oninput: (e) => { e.currentTarget.dataset.dirty = "true"; } },
    SECTIONS.map(([key, en, zh]) => field(`${en} ${zh}${key === "impression" ? " *" : ""}`, inputs[key], { wide: true })),
    status, errors.el,
    h("div", { class: "form-actions" }, saveBtn, signBtn));
}
