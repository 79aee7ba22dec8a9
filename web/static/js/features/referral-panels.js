// The referral page's record panels: the timeline (workflow events and clinical time points in
// one list, who and when, with the intervals each point closes), the shared studies (ECGs drawn
// inline), the shared consultations and the follow-up of a downward referral.

import { h, mount } from "../dom.js";
import { fmtDateTime, fmtDateTimeYear, term } from "../format.js";
import { t } from "../i18n.js";
import { toast } from "../ui/components.js";
import { isEcgStudy, renderEcg } from "./ecg.js";
import { studiesByUid, studyFacts } from "./dicomweb.js";
import { intervalChip } from "./referral-milestones.js";
import { openInViewer } from "./reading.js";
import { studySummary } from "./studypicker.js";
import { referralStatus } from "./referral-ui.js";

// The time point each workflow state stamps.
const STATE_POINT = { requested: "request", accepted: "accept", in_transit: "departure", arrived: "door" };

/** The intervals (done) that end at this time point. */
function closes(r, point, fetchedAt) {
  return Object.entries(r.intervals || {}).filter(([, iv]) => iv.end === point && iv.done)
    .map(([name, iv]) => intervalChip(name, iv, fetchedAt));
}

/** Events and manual/ECG time points merged in clinical order (when it happened, not when it
 * was entered: an onset of 22:04 entered at 23:39 comes first). */
export function timelineEntries(r) {
  const events = (r.history || []).map((e) => ({ at: e.at, kind: "event", e }));
  const byId = new Map((r.milestones || []).map((m) => [m.id, m]));
  const points = (r.milestones || []).filter((m) => m.source !== "transition" || m.corrects_id)
    .map((m) => ({ at: m.at, kind: "milestone", m, old: m.corrects_id ? byId.get(m.corrects_id) : null }));
  return [...events, ...points].sort((a, b) => new Date(a.at) - new Date(b.at));
}

export function timeline(r, fetchedAt) {
  return h("ol", { class: "timeline ref-timeline", "aria-label": t("referrals.timeline") }, timelineEntries(r).map((x) => {
    if (x.kind === "event") {
      const e = x.e;
      return h("li", { class: `tl-${e.to_status}`, dataset: { status: e.to_status } },
        h("span", { class: "tl-dot", "aria-hidden": "true" }),
        h("div", { class: "tl-body" },
          h("div", { class: "tl-head" }, referralStatus(e.to_status), h("time", { datetime: e.at }, fmtDateTimeYear(e.at))),
          h("p", { class: "small" }, e.from_status ? `${term("referral_status", e.from_status)} → ${term("referral_status", e.to_status)}` : t("referrals.tl_created"),
            " · ", e.actor_name || t("common.system")),
          e.note ? h("p", { class: "tl-note" }, e.note) : null,
          STATE_POINT[e.to_status] ? h("div", { class: "tl-intervals" }, closes(r, STATE_POINT[e.to_status], fetchedAt)) : null));
    }
    const m = x.m;
    return h("li", { class: ["tl-milestone", m.superseded && "tl-superseded"], dataset: { milestone: m.milestone } },
      h("span", { class: "tl-dot tl-dot-ms", "aria-hidden": "true" }),
      h("div", { class: "tl-body" },
        h("div", { class: "tl-head" }, h("strong", {}, term("milestone", m.milestone)),
          h("time", { datetime: m.at }, fmtDateTimeYear(m.at))),
        h("p", { class: "small" }, x.old ? [t("referrals.tl_corrected"), " ", h("s", {}, fmtDateTime(x.old.at)), " → ", fmtDateTime(m.at), " · "] : null,
          m.source === "ecg" ? t("referrals.tl_from_ecg") : (m.recorded_by_name || t("common.system")),
          m.recorded_at && Math.abs(new Date(m.recorded_at) - new Date(m.at)) > 60000 ? ` · ${t("referrals.tl_recorded_at", { time: fmtDateTime(m.recorded_at) })}` : null),
        m.reason ? h("p", { class: "tl-note" }, m.reason) : null,
        m.superseded ? null : h("div", { class: "tl-intervals" }, closes(r, m.milestone, fetchedAt))));
  }));
}

/**
 * Drawn ECGs kept across redraws of one referral page (a live update must not fetch and draw
 * the waveforms again): uid -> {el, destroy}. `close()` ends them with the page.
 */
export function ecgCache() {
  const drawn = new Map();
  return {
    get: (uid) => drawn.get(uid),
    set: (uid, entry) => drawn.set(uid, entry),
    close() { for (const e of drawn.values()) if (e.destroy) e.destroy(); drawn.clear(); },
  };
}

/** The shared studies: open in the reading window; ECGs drawn here on their grid. */
export function studiesPanel(r, ecgs) {
  if (!r.study_uids.length) return null;
  const rows = r.study_uids.map((uid) => {
    const about = h("span", { class: "study-about" }, t("referrals.study_loading"));
    const kept = ecgs.get(uid);
    const ecg = kept ? kept.el : h("div", { class: "ref-ecg", hidden: true });
    const open = h("button", { type: "button", class: "btn btn-sm btn-primary", "data-testid": "open-study" }, t("referrals.study_open"));
    const li = h("li", { class: "ref-study", dataset: { studyUid: uid } },
      h("div", { class: "ref-study-row" }, h("span", { class: "study-text" }, about, h("code", { class: "uid" }, uid)), open), ecg);
    return { uid, about, ecg, open, li };
  });
  studiesByUid(r.study_uids).then((found) => {
    for (const row of rows) {
      const s = found.get(row.uid);
      const f = s ? studyFacts(s) : null;
      row.about.textContent = f ? [f.patient, studySummary(f)].filter(Boolean).join(" · ") : t("referrals.study_unknown");
      row.open.onclick = () => { if (!openInViewer({ studyUid: row.uid, modalities: f ? f.modalities : [] })) toast(t("viewer.popup_blocked"), "error"); };
      if (f && isEcgStudy(f.modalities) && !ecgs.get(row.uid)) {
        row.ecg.hidden = false;
        row.li.dataset.modalities = "ECG";
        const entry = { el: row.ecg, destroy: null };
        ecgs.set(row.uid, entry);
        renderEcg(row.ecg, { studyUid: row.uid }).then((drawn) => { entry.destroy = drawn && drawn.destroy; },
          () => mount(row.ecg, h("p", { class: "muted small" }, t("referrals.ecg_failed"))));
      }
    }
  }, () => { for (const row of rows) row.about.textContent = t("referrals.study_unknown"); });
  return h("section", { class: "panel", "aria-labelledby": "ref-studies-title" },
    h("h2", { id: "ref-studies-title" }, t("referrals.studies_title")),
    h("ul", { class: "study-list ref-study-list" }, rows.map((row) => row.li)));
}

export function consultationsPanel(r) {
  if (!r.consultations.length) return null;
  return h("section", { class: "panel", "aria-labelledby": "ref-consults-title" },
    h("h2", { id: "ref-consults-title" }, t("referrals.consultations_title")),
    h("ul", { class: "study-list" }, r.consultations.map((c) => h("li", { dataset: { consultation: c.id } },
      h("span", { class: "study-text" },
        h("a", { href: `#/consultations/${c.id}`, class: "study-about" }, `#${c.id} ${term("kind", c.kind)}`),
        h("span", { class: "muted small clamp" }, c.question)),
      h("span", { class: `badge ref-report ref-report-${c.report_status}` }, t(`referrals.report_${c.report_status}`))))));
}

/** The follow-up a downward referral scheduled (shown in full to the clinic that does it). */
export function followUpPanel(r, followUp, onRecord) {
  if (r.direction !== "down" || !r.follow_up_id) return null;
  if (!followUp) {
    return h("section", { class: "panel", "aria-labelledby": "ref-fu-title" },
      h("h2", { id: "ref-fu-title" }, t("referrals.fu_title")), h("p", { class: "muted" }, t("referrals.fu_at_clinic")));
  }
  const f = followUp;
  return h("section", { class: ["panel", f.overdue && "fu-overdue-panel"], "aria-labelledby": "ref-fu-title", dataset: { followUp: f.id } },
    h("h2", { id: "ref-fu-title" }, t("referrals.fu_title")),
    h("p", {}, h("strong", {}, t("referrals.fu_due", { time: fmtDateTime(f.due_at) })), " ",
      f.status === "due" && f.overdue ? h("span", { class: "badge fu-overdue" }, t("followups.overdue")) : h("span", { class: "badge" }, term("followup_status", f.status))),
    f.plan ? h("p", { class: "prewrap" }, f.plan) : null,
    f.outcome ? h("p", { class: "tl-note" }, t("referrals.fu_outcome", { outcome: f.outcome, name: f.completed_by_name || "" })) : null,
    f.status === "due" && onRecord ? h("button", { type: "button", class: "btn btn-primary", onclick: () => onRecord(f) }, t("followups.record")) : null);
}
