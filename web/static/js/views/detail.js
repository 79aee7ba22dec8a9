// One consultation: summary, actions by role and state, report, studies, video, and timeline.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { STATUS, fmtDateTime, fmtDateTimeYear, fmtSlot, patientLine, relative, specialtyLabel, SEX, age } from "../format.js";
import { acceptDialog, allowedActions, cancelDialog, declineDialog, simpleAction } from "../features/actions.js";
import { renderReport } from "../features/report.js";
import { studiesPanel } from "../features/studies.js";
import { videoPanel } from "../features/video.js";
import { store } from "../store.js";
import { busy, dl, errorBox, kindLabel, loading, pageHeader, statusBadge, urgencyBadge } from "../ui/components.js";
import { confirmDialog } from "../ui/dialog.js";
import { whoLine } from "./list.js";

function timeline(c) {
  const items = [...c.history].sort((a, b) => new Date(a.at) - new Date(b.at));
  return h("ol", { class: "timeline", "aria-label": "History 历史" }, items.map((e) => h("li", { class: `tl-${e.to_status}`, dataset: { status: e.to_status } },
    h("span", { class: "tl-dot", "aria-hidden": "true" }),
    h("div", { class: "tl-body" },
      h("div", { class: "tl-head" }, statusBadge(e.to_status), h("time", { datetime: e.at }, fmtDateTimeYear(e.at))),
      h("p", { class: "small" }, e.from_status ? `${(STATUS[e.from_status] || [e.from_status])[0]} → ${(STATUS[e.to_status] || [e.to_status])[0]}` : "Request created", " · ", store.personName(e.actor_id, c)),
      e.note ? h("p", { class: "tl-note" }, e.note) : null))));
}

function actionBar(c, user, reload) {
  const can = allowedActions(c, user);
  const buttons = [];
  const run = (fn) => async (ev) => {
    const btn = ev.currentTarget;
    await busy(btn, async () => { if (await fn()) await reload(); });
  };
  if (can.has("accept")) buttons.push(h("button", { type: "button", class: "btn btn-primary", onclick: run(() => acceptDialog(c, user)) }, "Accept 接诊"));
  if (can.has("decline")) buttons.push(h("button", { type: "button", class: "btn btn-danger-outline", onclick: run(() => declineDialog(c)) }, "Decline 拒绝"));
  if (can.has("start")) buttons.push(h("button", { type: "button", class: "btn btn-primary", onclick: run(() => simpleAction(c, "start")) }, "Start consultation 开始会诊"));
  if (can.has("complete")) {
    const signed = c.report_status === "signed";
    buttons.push(h("button", { type: "button", class: "btn btn-primary", disabled: !signed, "aria-describedby": signed ? null : "complete-hint",
      onclick: run(() => simpleAction(c, "complete")) }, "Complete consultation 完成会诊"));
    if (!signed) buttons.push(h("p", { id: "complete-hint", class: "muted small" }, "Sign the report before completing. 请先签署报告。"));
  }
  if (can.has("no_show")) buttons.push(h("button", { type: "button", class: "btn", onclick: run(() => confirmDialog({
    title: "Record no-show 记录未到诊", message: "Record that this consultation did not take place?", submitLabel: "Record no-show", danger: true,
    onSubmit: () => simpleAction(c, "no_show"),
  })) }, "No-show 未到诊"));
  if (can.has("cancel")) buttons.push(h("button", { type: "button", class: "btn btn-danger-outline", onclick: run(() => cancelDialog(c)) }, "Cancel request 取消申请"));
  if (!buttons.length) return null;
  return h("section", { class: "panel actions-panel", "aria-labelledby": "actions-title" },
    h("h2", { id: "actions-title" }, "Actions ", h("span", { class: "zh" }, "操作")),
    h("div", { class: "action-buttons" }, buttons));
}

export async function render({ root, params, user, isCurrent, onCleanup }) {
  const id = Number(params.id);
  let shown = null; // what the page shows, to notice changes made by the other side
  mount(root, loading());

  async function reload() {
    let c;
    try {
      c = await api.get(`/api/consultations/${id}`);
    } catch (err) {
      if (!isCurrent()) return;
      mount(root, pageHeader(`Consultation #${id}`, "会诊"), errorBox(err), h("a", { class: "btn", href: "#/consultations" }, "Back to consultations 返回列表"));
      return;
    }
    if (!isCurrent()) return;
    shown = c;
    const p = c.patient;
    const can = allowedActions(c, user);
    const reportEl = h("div", { class: "report" });
    const [studies, video] = await Promise.all([studiesPanel(c, user, () => reload()), videoPanel(c, user)]);
    if (!isCurrent()) return;
    const sex = SEX[p.sex];
    const a = age(p.birth_date);
    const scroll = window.scrollY;
    mount(root,
      h("p", { class: "print-only" }, `Yilian 医联 · ${store.institutionName(c.requester_institution_id)} · printed ${fmtDateTimeYear(new Date())} (北京时间)`),
      pageHeader(`Consultation #${c.id}`, "会诊详情",
        c.report_status === "signed" ? h("button", { type: "button", class: "btn", onclick: () => window.print() }, "Print report 打印报告") : null,
        h("a", { class: "btn", href: user.role === "specialist" && c.expert_id === user.id ? "#/queue" : "#/consultations" }, "← Back 返回")),
      h("div", { class: "summary-strip", "aria-label": "Summary" },
        statusBadge(c.status), urgencyBadge(c.urgency), kindLabel(c.kind),
        c.status === "requested" ? h("span", { class: "muted small" }, `Must be accepted by ${fmtDateTime(c.deadline)} (${relative(c.deadline)})`) : null),
      h("div", { class: "detail-grid" },
        h("div", { class: "detail-main" },
          h("section", { class: "panel", "aria-labelledby": "case-title" },
            h("h2", { id: "case-title" }, patientLine(p)),
            dl([
              ["Patient 患者", `${p.name}${sex ? ` · ${sex[0]} ${sex[1]}` : ""}${p.birth_date ? ` · born ${p.birth_date}${a !== null ? ` (${a} y)` : ""}` : ""}`],
              ["From 申请机构", store.institutionName(c.requester_institution_id)],
              ["Expert 专家", whoLine(c)],
              c.specialty ? ["Specialty 专科", specialtyLabel(c.specialty)] : null,
              ["Time 时间", c.slot ? `${fmtSlot(c.slot)} (北京时间)` : "Not scheduled 未排期"],
              ["Requested 申请时间", fmtDateTimeYear(c.created_at)],
              c.reason ? [c.status === "declined" ? "Decline reason 拒绝原因" : "Reason 原因", c.reason] : null,
            ]),
            h("h3", {}, "Clinical question ", h("span", { class: "zh" }, "会诊目的")),
            h("p", { class: "prewrap question" }, c.question)),
          h("section", { class: "panel", id: "report-panel", "aria-labelledby": "report-title" },
            h("h2", { id: "report-title" }, "Report ", h("span", { class: "zh" }, "会诊报告")), reportEl),
          studies),
        h("aside", { class: "detail-side" },
          actionBar(c, user, reload),
          video,
          h("section", { class: "panel", "aria-labelledby": "tl-title" },
            h("h2", { id: "tl-title" }, "Timeline ", h("span", { class: "zh" }, "流程记录")), timeline(c)))));
    window.scrollTo(0, scroll);
    try {
      await renderReport(reportEl, c, { canWrite: can.has("report"), onChange: reload });
    } catch (err) {
      mount(reportEl, errorBox(err));
    }
  }
  // Follow changes made by the other party (accepted, started, report signed) without a reload,
  // unless the user is in the middle of something: a dialog, or typing in a form.
  const watch = setInterval(async () => {
    if (document.hidden || !shown || document.querySelector("dialog[open], .report-editor[data-dirty]")) return;
    const active = document.activeElement;
    if (active && active.closest && active.closest("form") && root.contains(active)) return;
    try {
      const fresh = await api.get(`/api/consultations/${id}`);
      const changed = fresh.updated_at !== shown.updated_at || fresh.report_status !== shown.report_status
        || fresh.study_uids.length !== shown.study_uids.length || (fresh.chat || []).length !== (shown.chat || []).length;
      if (changed && isCurrent()) await reload();
    } catch {
      // A failed background check is retried on the next tick; errors show on user actions.
    }
  }, 20000);
  onCleanup(() => clearInterval(watch));
  await reload();
}
