// The green channel's running clock: time since the request (since the door once the patient
// has arrived), and the intervals still running against their targets. One ticker per screen
// updates every clock it finds under the screen's root once a second, so a page of twenty
// referrals costs one timer, and clocks drawn later (a live refresh) tick without registering.

import { h } from "../dom.js";
import { t } from "../i18n.js";

const pad = (n) => String(n).padStart(2, "0");

/** Elapsed time as a stopwatch reads: "7:05", "1:02:09"; from a day on "1 d 13 h". */
export function stopwatch(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(s / 86400);
  if (days >= 1) return t("referrals.clock_days", { d: days, h: Math.floor((s % 86400) / 3600) });
  const hours = Math.floor(s / 3600);
  const mins = Math.floor((s % 3600) / 60);
  return hours ? `${hours}:${pad(mins)}:${pad(s % 60)}` : `${mins}:${pad(s % 60)}`;
}

/** Minutes with one decimal, the way the server reports intervals ("42.0"). */
export const minutesText = (m) => (Math.round(m * 10) / 10).toFixed(1);

/** What the referral's clock counts from now: {since, label} or null once it has stopped. */
export function clockOf(r) {
  const times = r.times || {};
  if (["completed", "rejected", "cancelled", "expired"].includes(r.status)) return null;
  if (times.arrived_at) return { since: times.arrived_at, label: t("referrals.clock_since_door") };
  return { since: times.requested_at, label: t("referrals.clock_since_request") };
}

/** The running clock of a referral (a stopped one shows how long the whole referral took). */
export function clockBadge(r, { big = false } = {}) {
  const clock = clockOf(r);
  const cls = ["ref-clock", big && "ref-clock-big", r.green_channel && "ref-clock-green"];
  if (!clock) {
    const times = r.times || {};
    const end = times.completed_at || times.closed_at;
    if (!end) return null;
    return h("span", { class: [...cls, "ref-clock-stopped"] },
      h("span", { class: "ref-clock-label" }, t("referrals.clock_total")),
      h("span", { class: "ref-clock-time" }, stopwatch(new Date(end) - new Date(times.requested_at))));
  }
  return h("span", { class: cls, role: "timer", "aria-label": clock.label },
    h("span", { class: "ref-clock-label" }, clock.label),
    h("span", { class: "ref-clock-time", dataset: { since: clock.since } }, stopwatch(Date.now() - new Date(clock.since))));
}

/** A running interval's minutes, counted on from what the server measured when it answered. */
export function runningMinutes(el) {
  const base = Number(el.dataset.minutes);
  const from = Number(el.dataset.fetched);
  return base + (Date.now() - from) / 60000;
}

/** Tick every clock under root once a second until the screen goes; returns the stop function. */
export function startTicker(root, onCleanup) {
  const tick = () => {
    for (const el of root.querySelectorAll("[data-since]")) el.textContent = stopwatch(Date.now() - new Date(el.dataset.since));
    for (const el of root.querySelectorAll("[data-running]")) {
      const m = runningMinutes(el);
      el.querySelector(".iv-minutes").textContent = minutesText(m);
      const target = Number(el.dataset.target);
      if (target && m > target && !el.classList.contains("iv-over")) {
        el.classList.add("iv-over");
        el.classList.remove("iv-ok");
      }
    }
  };
  const timer = setInterval(tick, 1000);
  const stop = () => clearInterval(timer);
  if (onCleanup) onCleanup(stop);
  return stop;
}
