// Yilian web client: hash router, application shell and session handling.

import { api, session } from "./api.js";
import { initialLanguage, locale, onLocaleChange, setLocale, t } from "./i18n.js";
import { h, mount } from "./dom.js";
import { term } from "./format.js";
import { isClinical, isManager, isSpecialist, store } from "./store.js";
import { errorBox, errorText, languageSwitch, loading, toast } from "./ui/components.js";
import * as notify from "./features/notify.js";

import * as availability from "./views/availability.js";
import * as call from "./views/call.js";
import * as consultations from "./views/consultations.js";
import * as detail from "./views/detail.js";
import * as ecg from "./views/ecg.js";
import * as experts from "./views/experts.js";
import * as login from "./views/login.js";
import * as queue from "./views/queue.js";
import * as requestForm from "./views/request.js";
import * as slots from "./views/slots.js";
import * as viewer from "./views/viewer.js";
import * as referrals from "./views/referrals.js";
import * as referralForm from "./views/referral-form.js";
import * as referral from "./views/referral.js";
import * as followups from "./views/followups.js";
import * as oncall from "./views/oncall.js";
import * as teaching from "./views/teaching.js";
import * as teachingForm from "./views/teaching-form.js";
import * as teachingSession from "./views/teaching-session.js";
import * as teachingAttendance from "./views/teaching-attendance.js";
import * as stats from "./views/stats.js";
import * as statsVisits from "./views/stats-visits.js";
import { followReferralCounts, referralNavItems, updateReferralCounts } from "./features/referral-nav.js";
import * as admin from "./views/admin.js";
// accounts: the forced password choice, my account, user administration, the audit log
import * as password from "./views/password.js";
import * as account from "./views/account.js";
import * as users from "./views/users.js";
import * as userForm from "./views/user-form.js";
import * as auditLog from "./views/audit.js";

const ROUTES = [
  { path: /^\/login$/, view: login, public: true },
  { path: /^\/experts$/, view: experts, nav: "experts" },
  { path: /^\/experts\/(\d+)$/, view: slots, nav: "experts", params: ["id"] },
  { path: /^\/request$/, view: requestForm, nav: (q) => (q.expert ? "experts" : "request"), clinical: true },
  { path: /^\/consultations$/, view: consultations, nav: "consultations", clinical: true },
  { path: /^\/consultations\/(\d+)$/, view: detail, nav: "consultations", params: ["id"], clinical: true },
  // live: a running call is not torn down to change the language (see followLanguage).
  { path: /^\/consultations\/(\d+)\/video$/, view: call, nav: "consultations", params: ["id"], clinical: true, live: true },
  { path: /^\/consultations\/(\d+)\/studies\/([0-9.]+)$/, view: viewer, nav: "consultations", params: ["id", "uid"], clinical: true },
  { path: /^\/ecg\/([0-9.]+)$/, view: ecg, params: ["uid"], clinical: true },
  { path: /^\/queue$/, view: queue, nav: "queue", clinical: true },
  { path: /^\/availability$/, view: availability, nav: "availability" },
  { path: /^\/availability\/(\d+)$/, view: availability, nav: "availability", params: ["id"] },
  { path: /^\/referrals$/, view: referrals, nav: "referrals", clinical: true },
  { path: /^\/referrals\/new$/, view: referralForm, nav: "referrals", clinical: true },
  { path: /^\/referrals\/(\d+)$/, view: referral, nav: "referrals", params: ["id"], clinical: true },
  { path: /^\/follow-ups$/, view: followups, nav: "follow-ups", clinical: true },
  { path: /^\/on-call$/, view: oncall, nav: "on-call" },
  { path: /^\/teaching$/, view: teaching, nav: "teaching" },
  { path: /^\/teaching\/new$/, view: teachingForm, nav: "teaching" },
  { path: /^\/teaching\/(\d+)\/edit$/, view: teachingForm, nav: "teaching", params: ["id"] },
  // live: a running broadcast is not torn down to change the language (see followLanguage).
  { path: /^\/teaching\/(\d+)$/, view: teachingSession, nav: "teaching", params: ["id"], live: true },
  { path: /^\/teaching\/(\d+)\/attendance$/, view: teachingAttendance, nav: "teaching", params: ["id"] },
  // Administration (admins and coordinators): institutions, alliances, modalities, import.
  { path: /^\/admin$/, view: admin, nav: "admin" },
  { path: /^\/admin\/(institutions|alliances|modalities|import)$/, view: admin, nav: "admin", params: ["section"] },
  // accounts (bare: no shell, since nothing else answers before the password is chosen)
  { path: /^\/password$/, view: password, bare: true },
  { path: /^\/account$/, view: account, nav: "account" },
  { path: /^\/users$/, view: users, nav: "users", manager: true },
  { path: /^\/users\/new$/, view: userForm, nav: "users", manager: true },
  { path: /^\/users\/(\d+)$/, view: userForm, nav: "users", params: ["id"], manager: true },
  { path: /^\/audit$/, view: auditLog, nav: "audit", admin: true },
  { path: /^\/stats$/, view: stats, nav: "stats" },
  { path: /^\/stats\/visits$/, view: statsVisits, nav: "stats" },
];

function navItems(user) {
  const items = [];
  if (isSpecialist(user)) items.push(["queue", "#/queue", t("nav.queue")]);
  if (isClinical(user)) {
    items.push(["consultations", "#/consultations", t("nav.consultations")]);
    items.push(["experts", "#/experts", t("nav.find_expert")]);
    items.push(["request", "#/request", t("nav.request")]);
  } else {
    items.push(["experts", "#/experts", t("nav.experts")]);
  }
  if (isSpecialist(user) || isManager(user)) items.push(["availability", "#/availability", t("nav.availability")]);
  items.push(...referralNavItems(user));
  items.push(["teaching", "#/teaching", t("teaching.nav")]);
  if (isManager(user)) items.push(["admin", "#/admin", t("directory.nav")]);
  if (isManager(user)) items.push(["users", "#/users", t("accounts.nav_users")]);
  if (user.role === "admin") items.push(["audit", "#/audit", t("accounts.nav_audit")]);
  items.push(["stats", "#/stats", t("stats.nav")]); // everyone reads their own scope's figures
  return items;
}

export function homeFor(user) {
  if (isSpecialist(user)) return "#/queue";
  if (isClinical(user)) return "#/consultations";
  return "#/experts";
}

export function navigate(hash) {
  if (window.location.hash === hash) render();
  else window.location.hash = hash;
}

function parseHash() {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?");
  return { path, query: Object.fromEntries(new URLSearchParams(qs || "")) };
}

const topbar = () => document.getElementById("topbar");
const viewEl = () => document.getElementById("view");

function renderShell(user, active) {
  const bar = topbar();
  bar.hidden = false;
  const inst = store.institutionName(user.institution_id);
  const menuId = "main-nav";
  const toggle = h("button", { type: "button", class: "btn nav-toggle", "aria-controls": menuId, "aria-expanded": "false",
    onclick: () => {
      const open = bar.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", String(open));
    } }, t("nav.menu"));
  mount(bar,
    h("a", { class: "brand", href: homeFor(user) },
      h("img", { src: "/static/img/logo.svg", alt: "", width: 28, height: 28 }),
      h("span", {}, t("common.app_name"))),
    toggle,
    h("nav", { id: menuId, class: "nav", "aria-label": t("nav.main") },
      navItems(user).map(([key, href, label]) => h("a", { href, class: key === active ? "active" : null,
        "aria-current": key === active ? "page" : null }, label))),
    notify.bell(),
    h("div", { class: "who" },
      h("a", { class: "who-text", href: "#/account", title: t("accounts.nav_account"), "aria-current": active === "account" ? "page" : null,
        style: { color: "inherit", textDecoration: "none" } },
        h("strong", { class: "who-name" }, user.display_name),
        h("span", { class: "who-meta" }, `${term("role", user.role)} · ${inst}`)),
      languageSwitch(),
      h("button", { type: "button", class: "btn btn-ghost", id: "logout", onclick: logout }, t("nav.logout"))));
  setTitle();
  if (isSpecialist(user)) updateQueueCount(bar);
  notify.start(session.token);
  updateReferralCounts(bar, user);
  followReferralCounts(topbar, () => session.user);
}

// The queue badge follows the consultations live: a request, acceptance or cancellation, and
// whatever happened while the socket was away (it refetches on every (re)connect).
function refreshQueueCount() {
  if (session.user && isSpecialist(session.user) && !topbar().hidden) updateQueueCount(topbar());
}
notify.onConnected(refreshQueueCount);
notify.onNotification((n) => {
  if (n.kind.startsWith("consultation.")) refreshQueueCount();
});

/** The number of requests waiting for this specialist, on the Queue link and in the title. */
let queueCountSeq = 0;
async function updateQueueCount(bar) {
  const seq = ++queueCountSeq; // a slower, older answer must not overwrite a newer one
  try {
    const [mine, queue] = await Promise.all([
      api.get("/api/consultations", { role: "expert", status: "requested" }),
      api.get("/api/consultations", { role: "queue", status: "requested" }),
    ]);
    if (seq !== queueCountSeq) return;
    const n = mine.length + queue.length;
    const link = bar.querySelector('.nav a[href="#/queue"]');
    if (!link) return;
    const old = link.querySelector(".nav-count");
    if (old) old.remove();
    if (n) link.append(h("span", { class: "nav-count", "aria-label": t("nav.waiting_count", { n }) }, String(n)));
    waitingCount = n;
    setTitle();
  } catch {
    // The count is a convenience; the queue page shows errors itself.
  }
}

async function logout() {
  try {
    await api.post("/api/auth/logout");
  } catch {
    // The token may already be expired or revoked; the session ends either way.
  }
  endSession();
  toast(t("nav.logged_out"));
}

function endSession(notice) {
  notify.stop();
  waitingCount = 0;
  shown = null;
  session.clear();
  store.reset();
  topbar().hidden = true;
  mount(topbar());
  if (notice) sessionStorage.setItem("yilian.notice", notice);
  setTitle();
  navigate("#/login");
}

let cleanups = [];
let shown = null; // the signed-in screen on show: its route, user and active nav item
let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  for (const fn of cleanups.splice(0)) fn();
  const { path, query } = parseHash();
  const user = session.user;
  if (!user || !session.token) {
    if (path !== "/login") { navigate("#/login"); return; }
  }
  // A new or reset account chooses its password before anything else.
  if (user && user.must_change_password && path !== "/password") { navigate("#/password"); return; }
  const route = ROUTES.find((r) => r.path.test(path));
  if (!route || (route.public && user)) { navigate(user ? homeFor(user) : "#/login"); return; }
  if (route.bare && !(user && user.must_change_password)) { navigate(homeFor(user)); return; }
  if (route.clinical && !isClinical(user)) { navigate(homeFor(user)); return; }
  if ((route.manager && !isManager(user)) || (route.admin && user.role !== "admin")) { navigate(homeFor(user)); return; }
  if (route.bare) { topbar().hidden = true; mount(topbar()); }
  const match = path.match(route.path);
  const params = Object.fromEntries((route.params || []).map((name, i) => [name, match[i + 1]]));
  const root = viewEl();
  if (!route.public && !route.bare) {
    if (!store.loaded) {
      mount(root, loading());
      try {
        await store.load();
      } catch (err) {
        if (err.status === 401) return;
        mount(root, errorBox(err));
        return;
      }
      if (seq !== renderSeq) return;
    }
    shown = { route, user, nav: typeof route.nav === "function" ? route.nav(query) : route.nav };
    renderShell(user, shown.nav);
    topbar().classList.remove("nav-open");
  }
  const ctx = {
    root, params, query, user, navigate,
    onCleanup: (fn) => cleanups.push(fn),
    isCurrent: () => seq === renderSeq,
  };
  try {
    await route.view.render(ctx);
  } catch (err) {
    if (seq !== renderSeq || err.status === 401) return;
    mount(root, errorBox(err));
  }
  if (seq === renderSeq) {
    // Move focus to the new screen's heading unless the view already focused a control.
    const active = document.activeElement;
    const heading = root.querySelector("h1");
    if (heading && (!active || active === document.body || active === root || !root.contains(active))) {
      heading.focus({ preventScroll: true });
    }
  }
}

window.addEventListener("hashchange", render);
window.addEventListener("yilian:unauthorized", () => {
  if (session.token) endSession("session_ended");
});
window.addEventListener("yilian:login", async (ev) => {
  // A new session starts in the user's saved language; a user who never chose one keeps the
  // language picked on the login page, and it is saved as theirs.
  const user = ev.detail;
  const wanted = user.locale || locale();
  try {
    quiet = true;
    if (wanted !== locale()) await setLocale(wanted);
    // (saved once the password is chosen: until then nothing else answers)
    if (!user.locale && !(session.user && session.user.must_change_password)) await saveLocale(wanted);
  } catch (err) {
    toast(errorText(err), "error");
  } finally {
    quiet = false;
  }
  const current = session.user || user;
  navigate(current.must_change_password ? "#/password" : homeFor(current));
});

let waitingCount = 0;
/** The window title: the app's name, with the number of waiting requests for a specialist. */
function setTitle() {
  const n = session.user ? waitingCount : 0;
  document.title = n ? t("nav.title_waiting", { n, app: t("common.app_name") }) : t("common.title");
}

/** Remember the language as the signed-in user's (the server keeps it across sessions). */
async function saveLocale(lang) {
  if (!session.token) return;
  const user = await api.put("/api/me/preferences", { locale: lang });
  session.save(session.token, user);
}

// The language switch: re-render the current screen in the new language, keeping what was typed.
let switching = false;
window.addEventListener("yilian:switch-language", async (ev) => {
  if (switching) return;
  switching = true;
  try {
    await setLocale(ev.detail);
    if (session.token) await saveLocale(ev.detail);
  } catch (err) {
    toast(errorText(err), "error");
  } finally {
    switching = false;
  }
});
/** The page's own texts (index.html's elements with data-i18n) in the current language. */
function translatePage() {
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

let quiet = false; // set while the language changes as part of logging in (navigation follows)
function followLanguage() {
  onLocaleChange(async () => {
    setTitle();
    translatePage();
    if (quiet) return;
    // A running call, or a report being written, is not torn down for the language: the top
    // bar changes now, the screen when it is next drawn (a view may relabel itself at once).
    const view = viewEl();
    const current = shown && ROUTES.find((r) => r.path.test(parseHash().path)) === shown.route ? shown : null;
    if (current && session.user && (current.route.live || view.querySelector("[data-dirty]"))) {
      renderShell(session.user, current.nav);
      if (typeof current.route.view.onLocaleChange === "function") current.route.view.onLocaleChange();
      else toast(t("common.language_later"));
      return;
    }
    const saved = formValues(view);
    await render();
    restoreFormValues(view, saved);
    const sw = document.querySelector(".lang-switch");
    if (sw) sw.focus({ preventScroll: true });
  });
}

/** The values of the named form controls in el (files excepted), to survive a re-render. */
function formValues(el) {
  const values = [];
  for (const c of el.querySelectorAll("input[name], select[name], textarea[name]")) {
    if (c.type === "file") continue;
    values.push([c.tagName, c.name, c.type === "checkbox" || c.type === "radio" ? c.checked : c.value, c.value]);
  }
  return values;
}

function restoreFormValues(el, values) {
  const seen = new Map();
  for (const [tag, name, state, value] of values) {
    const i = seen.get(`${tag}:${name}`) || 0;
    seen.set(`${tag}:${name}`, i + 1);
    const c = el.querySelectorAll(`${tag.toLowerCase()}[name="${CSS.escape(name)}"]`)[i];
    if (!c) continue;
    if (c.type === "checkbox" || c.type === "radio") c.checked = state;
    else if (c.tagName !== "SELECT" || [...c.options].some((o) => o.value === value)) c.value = value;
  }
}

setLocale(session.user?.locale || initialLanguage()).catch((err) => console.error(err)).finally(() => {
  setTitle();
  translatePage();
  followLanguage();
  render();
});
