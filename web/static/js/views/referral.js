// One referral: who, from where to where, its running clock, the actions this user may take,
// the green channel's time points and intervals, the timeline, what was shared and the
// follow-up. It redraws live when a notification about this referral arrives.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { TZ_OFFSET, age, fmtDateTime, fmtDateTimeYear, fmtDateYear, patientLine, relative, term } from "../format.js";
import { t } from "../i18n.js";
import { dl, errorBox, loading, pageHeader } from "../ui/components.js";
import { actionsPanel } from "../features/referral-actions.js";
import { clockBadge, startTicker } from "../features/referral-clock.js";
import { outcomeDialog } from "../features/referral-followup.js";
import { onReferralNews } from "../features/referral-live.js";
import { intervalsPanel, milestonePanel } from "../features/referral-milestones.js";
import { consultationsPanel, ecgCache, followUpPanel, studiesPanel, timeline } from "../features/referral-panels.js";
import { directionBadge, greenBadge, referralStatus, route } from "../features/referral-ui.js";

function casePanel(r) {
  const p = r.patient;
  const a = age(p.birth_date);
  const birth = p.birth_date ? fmtDateYear(`${p.birth_date}T12:00:00${TZ_OFFSET}`) : null;
  const born = birth ? (a !== null ? t("detail.born_age", { date: birth, n: a }) : t("detail.born", { date: birth })) : null;
  return h("section", { class: "panel", "aria-labelledby": "ref-case-title" },
    h("h2", { id: "ref-case-title" }, patientLine(p)),
    dl([
      [t("referrals.f_patient"), [p.name, p.sex ? term("sex", p.sex) : null, born].filter(Boolean).join(" · ")],
      [t("referrals.f_route"), route(r)],
      [t("referrals.f_direction"), term("direction", r.direction)],
      [t("referrals.f_requested"), t("referrals.by_at", { name: r.requester_name, time: fmtDateTimeYear(r.times.requested_at) })],
      r.accepted_by_name ? [t("referrals.f_accepted"), t("referrals.by_at", { name: r.accepted_by_name, time: fmtDateTimeYear(r.times.accepted_at) })] : null,
      r.times.onset_at ? [t("referrals.f_onset"), fmtDateTimeYear(r.times.onset_at)] : null,
      r.status === "requested" ? [t("referrals.f_deadline"), t("referrals.answer_by", { time: fmtDateTime(r.deadline), relative: relative(r.deadline) })] : null,
      r.escalated_at ? [t("referrals.f_escalated"), fmtDateTime(r.escalated_at)] : null,
      r.close_reason ? [t("referrals.f_close_reason"), r.close_reason] : null,
    ]),
    h("h3", {}, t("referrals.f_reason")),
    h("p", { class: "prewrap ref-reason-text" }, r.reason),
    r.summary ? [h("h3", {}, t("referrals.f_summary")), h("p", { class: "prewrap" }, r.summary)] : null);
}

async function findFollowUp(r) {
  if (r.direction !== "down" || !r.follow_up_id) return null;
  try {
    // open ones (due or overdue), then done ones: a completed follow-up still shows
    for (const status of [undefined, "completed"]) {
      const list = await api.get("/api/follow-ups", status ? { patient_id: r.patient_id, status } : { patient_id: r.patient_id });
      const found = list.find((f) => f.id === r.follow_up_id);
      if (found) return found;
    }
    return null;
  } catch {
    return null; // the referring hospital does not see the clinic's follow-up list
  }
}

export async function render({ root, params, user, isCurrent, onCleanup }) {
  const id = Number(params.id);
  const ecgs = ecgCache();
  onCleanup(() => ecgs.close());
  mount(root, loading());

  async function draw(r) {
    const fetchedAt = Date.now();
    const followUp = await findFollowUp(r);
    if (!isCurrent()) return;
    const onRecord = async (f) => { if (await outcomeDialog(f)) await reload(); };
    const scroll = window.scrollY;
    mount(root,
      pageHeader(t("referrals.page_title", { id: r.id }), h("a", { class: "btn", href: "#/referrals" }, t("referrals.back"))),
      h("div", { class: ["ref-hero", r.green_channel && "ref-hero-green"], dataset: { status: r.status } },
        h("div", { class: "ref-chips" }, greenBadge(r.green_channel), directionBadge(r.direction), referralStatus(r.status)),
        h("p", { class: "ref-hero-route" }, route(r)),
        clockBadge(r, { big: true })),
      h("div", { class: "detail-grid" },
        h("div", { class: "detail-main" },
          milestonePanel(r, user, draw),
          intervalsPanel(r, fetchedAt),
          casePanel(r),
          studiesPanel(r, ecgs),
          consultationsPanel(r),
          followUpPanel(r, followUp, onRecord)),
        h("aside", { class: "detail-side" },
          actionsPanel(r, draw),
          h("section", { class: "panel", "aria-labelledby": "ref-tl-title" },
            h("h2", { id: "ref-tl-title" }, t("referrals.timeline")), timeline(r, fetchedAt)))));
    window.scrollTo(0, scroll);
  }

  async function reload() {
    let r;
    try {
      r = await api.get(`/api/referrals/${id}`);
    } catch (err) {
      if (!isCurrent()) return;
      mount(root, pageHeader(t("referrals.page_title", { id })), errorBox(err), h("a", { class: "btn", href: "#/referrals" }, t("referrals.back")));
      return;
    }
    if (isCurrent()) await draw(r);
  }

  startTicker(root, onCleanup);
  // The other side's moves arrive as notifications; a dialog in progress is not torn down.
  const quietReload = () => { if (isCurrent() && !document.hidden && !document.querySelector("dialog[open]")) reload(); };
  onReferralNews(quietReload, { id, onCleanup });
  // Time points recorded by the other team send no notification: a referral still moving is
  // read again every half minute so both sides see the same clock.
  const poll = setInterval(() => { if (root.querySelector(".ref-hero .ref-clock[role=timer]")) quietReload(); }, 30000);
  onCleanup(() => clearInterval(poll));
  await reload();
}
