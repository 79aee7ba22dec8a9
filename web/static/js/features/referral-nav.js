// The referral items of the top bar: their routes' nav entries and the counts on them — open
// incoming green-channel referrals on "Referrals", due follow-ups on "Follow-ups" — kept fresh
// by referral notifications rather than a poll.

import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { isClinical, isManager, isSpecialist } from "../store.js";
import { onConnected, onNotification } from "./notify.js";

/** The nav entries [key, href, label] the referral screens add for this user. */
export function referralNavItems(user) {
  const items = [];
  if (isClinical(user)) items.push(["referrals", "#/referrals", t("referrals.nav_referrals")]);
  // Follow-ups are the grassroots clinics' work (a specialist's screen reaches them by address).
  if (isClinical(user) && !isSpecialist(user)) items.push(["follow-ups", "#/follow-ups", t("referrals.nav_follow_ups")]);
  if (isManager(user)) items.push(["on-call", "#/on-call", t("referrals.nav_on_call")]);
  return items;
}

function badge(bar, href, n, label) {
  const link = bar.querySelector(`.nav a[href="${href}"]`);
  if (!link) return;
  const old = link.querySelector(".nav-count");
  if (old) old.remove();
  if (n) link.append(h("span", { class: "nav-count", "aria-label": label }, String(n)));
}

/** Put the counts on the nav links (a convenience: a failed count is left off; the pages
 * themselves show errors). */
export async function updateReferralCounts(bar, user) {
  if (!isClinical(user)) return;
  const [green, due] = await Promise.allSettled([
    api.get("/api/referrals", { box: "incoming", open: "true", green_channel: "any" }),
    isSpecialist(user) ? Promise.resolve([]) : api.get("/api/follow-ups"),
  ]);
  if (green.status === "fulfilled") badge(bar, "#/referrals", green.value.length, t("referrals.nav_green_count", { n: green.value.length }));
  if (due.status === "fulfilled") badge(bar, "#/follow-ups", due.value.length, t("referrals.nav_due_count", { n: due.value.length }));
}

let following = false;
/** Refresh the counts whenever a referral or follow-up notification arrives (set up once). */
export function followReferralCounts(getBar, getUser) {
  if (following) return;
  following = true;
  const refresh = () => {
    const bar = getBar();
    const user = getUser();
    if (bar && !bar.hidden && user) updateReferralCounts(bar, user);
  };
  // What happened while the socket was away is fetched again on every (re)connect.
  onConnected(refresh);
  onNotification((ev) => { if (/^(referral|follow_up)\./.test(String(ev && ev.kind))) refresh(); });
}
