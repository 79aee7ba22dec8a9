// Live updates of the referral screens: they redraw when a notification about a referral (or a
// follow-up) arrives on the /notify socket, instead of polling. A burst of events (a referral
// accepted and its door recorded within a second) gives one refresh; so does a reconnect.

import { onConnected, onNotification } from "./notify.js";

const RELEVANT = /^(referral|follow_up)\./;

/**
 * Call refresh(event) when a referral notification arrives; `id` limits it to one referral.
 * Registers its unsubscribe with onCleanup (the router's, so it ends with the screen).
 */
export function onReferralNews(refresh, { id = null, onCleanup, delay = 150 } = {}) {
  let timer = null;
  const off = onNotification((ev) => {
    const resource = ev && ev.resource;
    if (!RELEVANT.test(String(ev && ev.kind)) && !(resource && ["referral", "follow_up"].includes(resource.type))) return;
    if (id !== null && !(resource && resource.type === "referral" && Number(resource.id) === Number(id))) return;
    clearTimeout(timer);
    timer = setTimeout(() => refresh(ev), delay);
  });
  // After a reconnect, whatever arrived while the socket was away is fetched again.
  const offConnected = onConnected(() => { clearTimeout(timer); timer = setTimeout(() => refresh(null), delay); });
  const stop = () => { clearTimeout(timer); off(); offConnected(); };
  if (onCleanup) onCleanup(stop);
  return stop;
}
