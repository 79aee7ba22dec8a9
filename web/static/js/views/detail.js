// One consultation: summary, actions by role and state, report, studies, video, and timeline.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { TZ_OFFSET, age, fmtDateTime, fmtDateTimeYear, fmtDateYear, fmtSlot, patientLine, relative, specialtyLabel, term } from "../format.js";
import { t } from "../i18n.js";
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
  return h("ol", { class: "timeline", "aria-label": t("detail.history") }, items.map((e) => h("li", { class: `tl-${e.to_status}`, dataset: { status: e.to_status } },
    h("span", { class: "tl-dot", "aria-hidden": "true" }),
    h("div", { class: "tl-body" },
      h("div", { class: "tl-head" }, statusBadge(e.to_status), h("time", { datetime: e.at }, fmtDateTimeYear(e.at))),
      h("p", { class: "small" }, e.from_status ? `${term("status", e.from_status)} → ${term("status", e.to_status)}` : t("detail.request_created"), " · ", store.personName(e.actor_id, c)),
      e.note ? h("p", { class: "tl-note" }, e.note) : null))));
}

function actionBar(c, user, reload) {
  const can = allowedActions(c, user);
  const buttons = [];
  const run = (fn) => async (ev) => {
    const btn = ev.currentTarget;
    await busy(btn, async () => { if (await fn()) await reload(); });
  };
  if (can.has("accept")) buttons.push(h("button", { type: "button", class: "btn btn-primary", onclick: run(() => acceptDialog(c, user)) }, t("actions.accept")));
  if (can.has("decline")) buttons.push(h("button", { type: "button", class: "btn btn-danger-outline", onclick: run(() => declineDialog(c)) }, t("actions.decline")));
  if (can.has("start")) buttons.push(h("button", { type: "button", class: "btn btn-primary", onclick: run(() => simpleAction(c, "start")) }, t("actions.start")));
  if (can.has("complete")) {
    const signed = c.report_status === "signed";
    buttons.push(h("button", { type: "button", class: "btn btn-primary", disabled: !signed, "aria-describedby": signed ? null : "complete-hint",
      onclick: run(() => simpleAction(c, "complete")) }, t("actions.complete")));
    if (!signed) buttons.push(h("p", { id: "complete-hint", class: "muted small" }, t("actions.sign_before_complete")));
  }
  if (can.has("no_show")) buttons.push(h("button", { type: "button", class: "btn", onclick: run(() => confirmDialog({
    title: t("actions.no_show_title"), message: t("actions.no_show_message"), submitLabel: t("actions.no_show_submit"), danger: true,
    onSubmit: () => simpleAction(c, "no_show"),
  })) }, t("actions.no_show")));
  if (can.has("cancel")) buttons.push(h("button", { type: "button", class: "btn btn-danger-outline", onclick: run(() => cancelDialog(c)) }, t("actions.cancel_request")));
  if (!buttons.length) return null;
  return h("section", { class: "panel actions-panel", "aria-labelledby": "actions-title" },
    h("h2", { id: "actions-title" }, t("detail.actions")),
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
      mount(root, pageHeader(t("detail.title", { id })), errorBox(err), h("a", { class: "btn", href: "#/consultations" }, t("detail.back_to_list")));
      return;
    }
    if (!isCurrent()) return;
    shown = c;
    const p = c.patient;
    const can = allowedActions(c, user);
    const reportEl = h("div", { class: "report" });
    const [studies, video] = await Promise.all([studiesPanel(c, user, () => reload()), videoPanel(c, user)]);
    if (!isCurrent()) return;
    const a = age(p.birth_date);
    const birth = p.birth_date ? fmtDateYear(`${p.birth_date}T12:00:00${TZ_OFFSET}`) : null;
    const born = birth ? (a !== null ? t("detail.born_age", { date: birth, n: a }) : t("detail.born", { date: birth })) : null;
    const scroll = window.scrollY;
    mount(root,
      h("p", { class: "print-only" }, t("detail.printed", { app: t("common.app_name"), institution: store.institutionName(c.requester_institution_id), time: fmtDateTimeYear(new Date()) })),
      pageHeader(t("detail.title", { id: c.id }),
        c.report_status === "signed" ? h("button", { type: "button", class: "btn", onclick: () => window.print() }, t("detail.print_report")) : null,
        c.requester_institution_id === user.institution_id ? h("a", { class: "btn", href: `#/referrals/new?consultation=${c.id}` }, t("referrals.refer")) : null,
        h("a", { class: "btn", href: user.role === "specialist" && c.expert_id === user.id ? "#/queue" : "#/consultations" }, t("detail.back"))),
      h("div", { class: "summary-strip", "aria-label": t("detail.summary") },
        statusBadge(c.status), urgencyBadge(c.urgency), kindLabel(c.kind),
        c.status === "requested" ? h("span", { class: "muted small" }, t("detail.accept_by", { time: fmtDateTime(c.deadline), relative: relative(c.deadline) })) : null),
      h("div", { class: "detail-grid" },
        h("div", { class: "detail-main" },
          h("section", { class: "panel", "aria-labelledby": "case-title" },
            h("h2", { id: "case-title" }, patientLine(p)),
            dl([
              [t("detail.patient"), [p.name, p.sex ? term("sex", p.sex) : null, born].filter(Boolean).join(" · ")],
              [t("detail.from"), store.institutionName(c.requester_institution_id)],
              [t("detail.expert"), whoLine(c)],
              c.specialty ? [t("detail.specialty"), specialtyLabel(c.specialty)] : null,
              [t("detail.time"), c.slot ? t("detail.beijing_time", { time: fmtSlot(c.slot) }) : t("consultations.not_scheduled")],
              [t("detail.requested"), fmtDateTimeYear(c.created_at)],
              c.reason ? [c.status === "declined" ? t("detail.decline_reason") : t("detail.reason"), c.reason] : null,
            ]),
            h("h3", {}, t("detail.question")),
            h("p", { class: "prewrap question" }, c.question)),
          h("section", { class: "panel", id: "report-panel", "aria-labelledby": "report-title" },
            h("h2", { id: "report-title" }, t("detail.report")), reportEl),
          studies),
        h("aside", { class: "detail-side" },
          actionBar(c, user, reload),
          video,
          h("section", { class: "panel", "aria-labelledby": "tl-title" },
            h("h2", { id: "tl-title" }, t("detail.timeline")), timeline(c)))));
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
