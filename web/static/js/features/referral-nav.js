// The referral items of the top bar: their routes' nav entries and the counts on them — open
// incoming green-channel referrals on "Referrals", due follow-ups on "Follow-ups" — kept fresh
// by referral notifications rather than a poll.

import { api } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { isClinical, isManager } from "../store.js";
import { onConnected, onNotification } from "./notify.js";

/** The nav entries [key, href, label] the referral screens add for this user. */
export function referralNavItems(user) {
  const items = [];
  if (isClinical(user)) {
    items.push(["referrals", "#/referrals", t("referrals.nav_referrals")]);
    items.push(["follow-ups", "#/follow-ups", t("referrals.nav_follow_ups")]);
  }
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

/** Put the counts on the nav links (a convenience: a failure leaves them off). */
export async function updateReferralCounts(bar, user) {
  if (!isClinical(user)) return;
  try {
    const [green, due] = await Promise.all([
      api.get("/api/referrals", { box: "incoming", open: "true", green_channel: "any" }),
      api.get("/api/follow-ups", { status: "due" }),
    ]);
    badge(bar, "#/referrals", green.length, t("referrals.nav_green_count", { n: green.length }));
    badge(bar, "#/follow-ups", due.length, t("referrals.nav_due_count", { n: due.length }));
  } catch {
    // The pages themselves show errors.
  }
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
