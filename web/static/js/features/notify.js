// Live notifications: one /notify socket per signed-in tab, the bell in the top bar (unread
// count, a dropdown of the newest, mark read), a short beep and the browser's notification for
// urgent ones, and a banner for green-channel alerts that stays until acknowledged.
// Other screens subscribe with onNotification(fn) to refresh themselves live.

import { io } from "../../vendor/socket.io-client/socket.io.esm.min.js";
import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { fmtDateTime, relative } from "../format.js";
import { onLocaleChange, t } from "../i18n.js";
import { toast } from "../ui/components.js";

const ACK_TIMEOUT_MS = 10000;
const LIST_SIZE = 20;
/** Kinds whose banner stays on screen until someone acknowledges it. */
const BANNER_KINDS = new Set(["referral.green_channel", "referral.escalated"]);
/** Kinds that say an alert's referral needs nobody's action any more (the server has marked
 * the alert read): its banner goes without being acknowledged. */
const SETTLING_KINDS = new Set(["referral.accepted", "referral.rejected", "referral.cancelled", "referral.expired"]);

const listeners = new Set();
const connectedListeners = new Set();
let socket = null;
let socketToken = null;
let unread = 0;
let items = null; // the dropdown's list, newest first; null until fetched
let open = false;
let bellEl = null;
let bannerBox = null;
const banners = new Map(); // notification id -> notification shown in a banner
let audio = null;

/** Call fn(notification) for each live notification; returns the unsubscribe function. */
export function onNotification(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Call fn() each time the socket (re)connects: a screen refetches what it may have missed. */
export function onConnected(fn) {
  connectedListeners.add(fn);
  return () => connectedListeners.delete(fn);
}

/** The number of unread notifications as last known. */
export function unreadCount() {
  return unread;
}

/** Connect for this session's token (again only when the token changed). */
export function start(token) {
  if (!token || (socket && socketToken === token)) return;
  stop();
  socketToken = token;
  socket = io("/notify", { path: "/socket.io", auth: { token }, transports: ["websocket", "polling"] });
  socket.on("connect", () => {
    items = null; // may have missed some while away
    loadBanners();
    for (const fn of connectedListeners) safely(fn);
  });
  socket.on("unread", ({ count }) => setUnread(count));
  socket.on("notification", received);
  // The login ended (logout elsewhere, expiry, deactivation): stop; the next API call says why.
  socket.on("session-ended", () => stop());
  socket.on("connect_error", (err) => {
    if (err && err.message === "unauthorized") stop();
  });
}

/** Disconnect and forget everything of this session (logout). */
export function stop() {
  if (socket) socket.disconnect();
  socket = null;
  socketToken = null;
  unread = 0;
  items = null;
  open = false;
  banners.clear();
  renderBanners();
}

function safely(fn, ...args) {
  try {
    fn(...args);
  } catch (err) {
    console.error(err);
  }
}

function received(n) {
  if (!n || typeof n.id !== "number") return;
  if (items && !items.some((i) => i.id === n.id)) items = [n, ...items].slice(0, LIST_SIZE);
  if (!n.read_at) setUnread(unread + 1);
  if (n.urgent) alertUrgent(n);
  if (BANNER_KINDS.has(n.kind)) showBanner(n);
  else if (SETTLING_KINDS.has(n.kind)) settleBanners(n.resource);
  for (const fn of listeners) safely(fn, n);
  renderBell();
}

function setUnread(count) {
  unread = Math.max(0, Number(count) || 0);
  renderBell();
}

// --- sound and the browser's notification, for urgent ones ---------------------------------

// Browsers start audio only after a user gesture: the first click anywhere unlocks it.
document.addEventListener("pointerdown", () => {
  if (!audio && window.AudioContext) audio = new AudioContext();
  else if (audio && audio.state === "suspended") audio.resume();
}, { capture: true });

function beep() {
  if (!audio || audio.state !== "running") return;
  const now = audio.currentTime;
  for (const [offset, freq] of [[0, 880], [0.22, 1175]]) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, now + offset);
    gain.gain.exponentialRampToValueAtTime(0.25, now + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.18);
    osc.connect(gain).connect(audio.destination);
    osc.start(now + offset);
    osc.stop(now + offset + 0.2);
  }
}

function alertUrgent(n) {
  beep();
  if (!("Notification" in window) || Notification.permission !== "granted") {
    toast(n.title, "error");
    return;
  }
  const shown = new Notification(n.title, { body: n.body, tag: `yilian-${n.id}`, requireInteraction: BANNER_KINDS.has(n.kind) });
  shown.onclick = () => {
    window.focus();
    openResource(n);
    shown.close();
  };
}

function mayAskPermission() {
  return "Notification" in window && Notification.permission === "default";
}

// --- reading --------------------------------------------------------------------------------

/** The screen a notification is about, or null. */
export function resourceHash(n) {
  const r = n && n.resource;
  if (!r) return null;
  if (r.type === "consultation") return `#/consultations/${r.id}`;
  if (r.type === "referral") return `#/referrals/${r.id}`;
  return null;
}

function openResource(n) {
  markRead(n);
  const hash = resourceHash(n);
  if (hash) window.location.hash = hash;
}

async function markRead(n) {
  if (n.read_at) return;
  n.read_at = new Date().toISOString();
  try {
    if (socket && socket.connected) {
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("read", { id: n.id });
      if (ack && ack.ok) setUnread(ack.unread);
    } else {
      await api.post(`/api/notifications/${n.id}/read`);
      setUnread(unread - 1);
    }
  } catch {
    n.read_at = null; // shown unread again; the next try may work
  }
  renderBell();
}

async function markAllRead() {
  try {
    if (socket && socket.connected) {
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("read-all", {});
      if (ack && ack.ok) setUnread(ack.unread);
    } else {
      await api.post("/api/notifications/read-all");
      setUnread(0);
    }
    const now = new Date().toISOString();
    for (const n of items || []) n.read_at = n.read_at || now;
  } catch {
    toast(t("notify.failed"), "error");
  }
  renderBell();
}

async function loadList() {
  try {
    items = await api.get("/api/notifications", { limit: LIST_SIZE });
  } catch {
    items = items || [];
    toast(t("notify.failed"), "error");
  }
  renderBell();
}

// --- the bell -------------------------------------------------------------------------------

/** The bell for the top bar; the shell calls it on every render (state lives here). */
export function bell() {
  bellEl = h("div", { class: "bell" });
  renderBell();
  return bellEl;
}

function toggle() {
  open = !open;
  if (open && mayAskPermission()) Notification.requestPermission().then(renderBell, () => {});
  if (open && items === null) loadList();
  renderBell();
}

function close() {
  if (!open) return;
  open = false;
  renderBell();
}

document.addEventListener("click", (ev) => {
  // The path as dispatched: the clicked button may have been re-rendered away since.
  if (open && bellEl && !ev.composedPath().includes(bellEl)) close();
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && open) {
    close();
    const btn = bellEl && bellEl.querySelector(".bell-button");
    if (btn) btn.focus();
  }
});

function renderBell() {
  if (!bellEl) return;
  const label = unread ? t("notify.bell_unread", { n: unread }) : t("notify.bell");
  const button = h("button", {
    type: "button", class: "btn btn-ghost bell-button", "aria-label": label, title: label,
    "aria-haspopup": "true", "aria-expanded": String(open), onclick: toggle,
  }, bellIcon(), unread ? h("span", { class: "bell-count", "aria-hidden": "true" }, unread > 99 ? "99+" : String(unread)) : null);
  mount(bellEl, button, open ? dropdown() : null);
}

function bellIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

function dropdown() {
  const head = h("div", { class: "bell-head" },
    h("strong", {}, t("notify.title")),
    h("button", { type: "button", class: "btn btn-ghost btn-small", disabled: !unread, onclick: markAllRead }, t("notify.read_all")));
  let body;
  if (items === null) body = h("p", { class: "bell-empty" }, t("common.loading"));
  else if (!items.length) body = h("p", { class: "bell-empty" }, t("notify.empty"));
  else body = h("ul", { class: "bell-list" }, items.map(entry));
  const ask = mayAskPermission()
    ? h("button", { type: "button", class: "btn btn-ghost btn-small bell-permission",
      onclick: () => Notification.requestPermission().then(renderBell, () => {}) }, t("notify.enable_desktop"))
    : null;
  return h("div", { class: "bell-panel", role: "region", "aria-label": t("notify.title") }, head, body, ask);
}

function entry(n) {
  const unreadNow = !n.read_at;
  return h("li", { class: ["bell-item", unreadNow && "unread", n.urgent && "urgent"] },
    h("button", { type: "button", class: "bell-open", onclick: () => { close(); openResource(n); } },
      h("span", { class: "bell-item-title" }, n.title),
      n.body ? h("span", { class: "bell-item-body" }, n.body) : null,
      h("time", { class: "bell-item-time", datetime: n.created_at, title: fmtDateTime(n.created_at) }, relative(n.created_at))),
    unreadNow
      ? h("button", { type: "button", class: "btn btn-ghost btn-small bell-mark", "aria-label": t("notify.mark_read_label", { title: n.title }),
        onclick: (ev) => { ev.stopPropagation(); markRead(n); } }, t("notify.mark_read"))
      : null);
}

// --- urgent banners -------------------------------------------------------------------------

async function loadBanners() {
  try {
    const pending = await api.get("/api/notifications", { unread: "true", limit: 50 });
    for (const n of pending.reverse()) if (BANNER_KINDS.has(n.kind)) showBanner(n);
  } catch {
    // The bell still shows them; banners are a second way to see them.
  }
}

function showBanner(n) {
  banners.set(n.id, n);
  renderBanners();
}

function settleBanners(resource) {
  if (!resource) return;
  const same = (n) => n.resource && n.resource.type === resource.type && n.resource.id === resource.id;
  let changed = false;
  for (const [id, n] of banners) {
    if (same(n)) {
      banners.delete(id);
      changed = true;
    }
  }
  for (const n of items || []) {
    if (BANNER_KINDS.has(n.kind) && same(n) && !n.read_at) {
      n.read_at = new Date().toISOString();
      changed = true;
    }
  }
  if (!changed) return;
  renderBanners();
  refreshUnread();
}

/** Ask the server for the unread count (alerts it marked read on our behalf). */
async function refreshUnread() {
  try {
    if (socket && socket.connected) {
      const ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck("unread");
      if (ack && ack.ok) setUnread(ack.count);
    } else {
      setUnread((await api.get("/api/notifications/unread-count")).count);
    }
  } catch {
    // the next notification or reconnect brings the count again
  }
}

function acknowledge(n) {
  banners.delete(n.id);
  renderBanners();
  markRead(n);
}

function renderBanners() {
  if (!bannerBox) {
    if (!banners.size) return;
    bannerBox = h("div", { class: "urgent-banners", role: "alert", "aria-live": "assertive" });
    document.body.prepend(bannerBox);
  }
  mount(bannerBox, [...banners.values()].reverse().map((n) => h("div", { class: "urgent-banner" },
    h("div", { class: "urgent-text" }, h("strong", {}, n.title), n.body ? h("span", {}, n.body) : null),
    resourceHash(n) ? h("button", { type: "button", class: "btn", onclick: () => { acknowledge(n); openResource(n); } }, t("notify.open")) : null,
    h("button", { type: "button", class: "btn btn-danger", onclick: () => acknowledge(n) }, t("notify.acknowledge")))));
  bannerBox.hidden = !banners.size;
}

onLocaleChange(() => {
  renderBanners();
  renderBell();
});
