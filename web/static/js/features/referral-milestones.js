// The green channel's clinical clock on the referral page: one big button per time point of
// the channel (tap = now; "edit time" for another time), corrections with a reason that keep
// the old value visible, and the intervals against their targets, running ones counting.

import { api } from "../api.js";
import { field, h } from "../dom.js";
import { fmtDateTime, fmtTime, fromLocalInput, term, toLocalInput } from "../format.js";
import { t } from "../i18n.js";
import { busy, toast } from "../ui/components.js";
import { formDialog } from "../ui/dialog.js";
import { minutesText } from "./referral-clock.js";

// Time points the workflow records (the action buttons), and the columns that hold them.
export const TRANSITION_POINTS = { onset: "onset_at", request: "requested_at", accept: "accepted_at", departure: "departed_at", door: "arrived_at" };
// Tapping one of these before it has a value takes its transition (door = the arrival) at the
// time given, as the server does (workflow.POINT_ACTIONS).
const POINT_ACTIONS = { accept: "accept", departure: "depart", door: "arrive" };
// Who records which time point (workflow.REFERRING_POINTS / RECEIVING_POINTS); nobody changes
// the request time, the server's own record.
const REFERRING_POINTS = new Set(["onset", "first_contact", "first_ecg", "departure"]);
const CLOSED = ["rejected", "cancelled", "expired"];

/** name -> {at, row, replaced: [older rows]} for the current value of each time point. */
export function currentPoints(r) {
  const points = new Map();
  for (const row of r.milestones || []) {
    const p = points.get(row.milestone) || { at: null, row: null, replaced: [] };
    if (row.superseded) p.replaced.push(row);
    else { p.at = row.at; p.row = row; }
    points.set(row.milestone, p);
  }
  for (const [name, col] of Object.entries(TRANSITION_POINTS)) {
    const at = r.times && r.times[col];
    if (at && !(points.get(name) || {}).at) points.set(name, { ...(points.get(name) || { replaced: [] }), at, row: null });
  }
  return points;
}

/** Whether this user may record (or correct) this time point: the receiving team everything
 * but the request and the departure, the referring team its side of the clock. */
export function mayRecord(r, user, name) {
  if (name === "request" || CLOSED.includes(r.status)) return false;
  if (user.institution_id === r.to_institution_id) return name !== "departure";
  if (user.institution_id === r.from_institution_id) return REFERRING_POINTS.has(name);
  return false;
}

/** A time point without a value that this user may record now (a transition point only when
 * its transition may be taken now). */
function mayTap(r, user, name) {
  if (!mayRecord(r, user, name)) return false;
  return !(name in POINT_ACTIONS) || (r.actions || []).includes(POINT_ACTIONS[name]);
}

function recordDialog(r, name, current) {
  const at = h("input", { type: "datetime-local", name: "at", required: true, max: toLocalInput(new Date()),
    value: toLocalInput(current ? current.at : new Date()) });
  const reason = h("textarea", { name: "reason", rows: 3, maxlength: 4000, required: Boolean(current) });
  return formDialog({
    title: t(current ? "referrals.ms_correct_title" : "referrals.ms_record_title", { name: term("milestone", name) }),
    submitLabel: t(current ? "referrals.ms_correct_submit" : "referrals.ms_record_submit"),
    body: [
      current ? h("p", { class: "ms-old" }, t("referrals.ms_recorded_value"), " ", h("s", {}, fmtDateTime(current.at))) : null,
      field(t("referrals.ms_time"), at, { hint: t("referrals.ms_time_hint") }),
      current ? field(t("referrals.ms_reason"), reason, { wide: true }) : null,
    ],
    onSubmit: () => {
      const body = { milestone: name, at: fromLocalInput(at.value) };
      if (current) body.reason = reason.value.trim();
      return api.post(`/api/referrals/${r.id}/milestones`, body);
    },
  });
}

function pointRow(r, user, name, p, onDone) {
  const label = term("milestone", name);
  const can = mayRecord(r, user, name);
  const done = (res) => { if (res) { toast(t("referrals.ms_saved", { name: label })); onDone(res); } };
  if (p && p.at) {
    const old = p.replaced.length ? p.replaced[p.replaced.length - 1] : null;
    return h("li", { class: "ms-row ms-done", dataset: { milestone: name } },
      h("span", { class: "ms-check", "aria-hidden": "true" }, "✓"),
      h("span", { class: "ms-name" }, label),
      h("span", { class: "ms-when" },
        old ? h("s", { class: "ms-old-value", title: old.reason || "" }, fmtTime(old.at)) : null,
        h("time", { datetime: p.at, title: fmtDateTime(p.at) }, fmtTime(p.at)),
        p.row && p.row.source === "ecg" ? h("span", { class: "tag" }, t("referrals.ms_from_ecg")) : null),
      can ? h("button", { type: "button", class: "btn btn-sm btn-ghost ms-correct",
        onclick: (ev) => busy(ev.currentTarget, async () => done(await recordDialog(r, name, p))) }, t("referrals.ms_correct")) : null);
  }
  if (!mayTap(r, user, name)) {
    const byAction = name in POINT_ACTIONS || name === "request";
    return h("li", { class: "ms-row ms-waiting", dataset: { milestone: name } },
      h("span", { class: "ms-check", "aria-hidden": "true" }, "○"),
      h("span", { class: "ms-name" }, label),
      h("span", { class: "ms-when muted small" }, byAction ? t(`referrals.ms_by_action_${name}`) : t("referrals.ms_not_yet")));
  }
  return h("li", { class: "ms-row ms-todo", dataset: { milestone: name } },
    h("button", { type: "button", class: "btn ms-tap", "data-testid": `record-${name}`,
      onclick: (ev) => busy(ev.currentTarget, async () => done(await api.post(`/api/referrals/${r.id}/milestones`, { milestone: name }))) },
    h("span", { class: "ms-tap-name" }, label), h("span", { class: "ms-tap-sub" }, t("referrals.ms_tap_now"))),
    h("button", { type: "button", class: "btn btn-sm btn-ghost ms-edit",
      "aria-label": t("referrals.ms_edit_time_for", { name: label }),
      onclick: (ev) => busy(ev.currentTarget, async () => done(await recordDialog(r, name, null))) }, t("referrals.ms_edit_time")));
}

/** The time-point panel of a green-channel referral. */
export function milestonePanel(r, user, onDone) {
  if (!r.green_channel || !(r.milestone_names || []).length) return null;
  const points = currentPoints(r);
  // The next time point to record is the big red one; later ones stay tappable but quieter.
  const next = r.milestone_names.find((name) => !(points.get(name) || {}).at && mayTap(r, user, name));
  return h("section", { class: "panel ms-panel", "aria-labelledby": "ms-title" },
    h("h2", { id: "ms-title" }, t("referrals.ms_title", { kind: term("green_channel", r.green_channel) })),
    h("ol", { class: "ms-list" }, r.milestone_names.map((name) => {
      const row = pointRow(r, user, name, points.get(name), onDone);
      if (name === next) row.classList.add("ms-next");
      return row;
    })));
}

/** One interval against its target: "42.0 / 60 min ✓", red when over, counting when running. */
export function intervalChip(name, iv, fetchedAt) {
  if (!iv || iv.minutes === null || iv.minutes === undefined) return null;
  const state = iv.met === false ? "iv-over" : iv.met === true ? "iv-ok" : "iv-neutral";
  const running = !iv.done;
  return h("span", {
    class: ["iv-chip", state, running && "iv-running"], dataset: running ? { running: "1", minutes: iv.minutes, fetched: fetchedAt, target: iv.target_minutes || "" } : { interval: name },
  },
  h("span", { class: "iv-name" }, term("interval", name)),
  h("span", { class: "iv-value" }, h("span", { class: "iv-minutes" }, minutesText(iv.minutes)), " ",
    iv.target_minutes ? t("referrals.iv_of_target", { target: iv.target_minutes }) : t("referrals.iv_min")),
  iv.done && iv.met !== null ? h("span", { class: "iv-mark", "aria-label": t(iv.met ? "referrals.iv_met" : "referrals.iv_missed") }, iv.met ? "✓" : "✗") : null,
  running ? h("span", { class: "iv-mark iv-live" }, t("referrals.iv_running")) : null);
}

/** The intervals panel: every interval of the channel, the pending ones with their target. */
export function intervalsPanel(r, fetchedAt) {
  const entries = Object.entries(r.intervals || {});
  if (!entries.length) return null;
  return h("section", { class: "panel iv-panel", "aria-labelledby": "iv-title" },
    h("h2", { id: "iv-title" }, t("referrals.iv_title")),
    h("ul", { class: "iv-list" }, entries.map(([name, iv]) => h("li", { dataset: { interval: name } },
      intervalChip(name, iv, fetchedAt) || h("span", { class: "iv-chip iv-pending" },
        h("span", { class: "iv-name" }, term("interval", name)),
        h("span", { class: "iv-value muted" }, iv.target_minutes ? t("referrals.iv_target_only", { target: iv.target_minutes }) : "—"))))));
}
