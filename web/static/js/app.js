// Yilian web client: hash router, application shell and session handling.

import { api, session } from "./api.js";
import { initialLanguage, setLocale } from "./i18n.js";
import { h, mount } from "./dom.js";
import { ROLE } from "./format.js";
import { isClinical, isManager, isSpecialist, store } from "./store.js";
import { errorBox, loading, toast } from "./ui/components.js";

import * as availability from "./views/availability.js";
import * as call from "./views/call.js";
import * as consultations from "./views/consultations.js";
import * as detail from "./views/detail.js";
import * as experts from "./views/experts.js";
import * as login from "./views/login.js";
import * as queue from "./views/queue.js";
import * as requestForm from "./views/request.js";
import * as slots from "./views/slots.js";
import * as viewer from "./views/viewer.js";

const ROUTES = [
  { path: /^\/login$/, view: login, public: true },
  { path: /^\/experts$/, view: experts, nav: "experts" },
  { path: /^\/experts\/(\d+)$/, view: slots, nav: "experts", params: ["id"] },
  { path: /^\/request$/, view: requestForm, nav: (q) => (q.expert ? "experts" : "request"), clinical: true },
  { path: /^\/consultations$/, view: consultations, nav: "consultations", clinical: true },
  { path: /^\/consultations\/(\d+)$/, view: detail, nav: "consultations", params: ["id"], clinical: true },
  { path: /^\/consultations\/(\d+)\/video$/, view: call, nav: "consultations", params: ["id"], clinical: true },
  { path: /^\/consultations\/(\d+)\/studies\/([0-9.]+)$/, view: viewer, nav: "consultations", params: ["id", "uid"], clinical: true },
  { path: /^\/queue$/, view: queue, nav: "queue", clinical: true },
  { path: /^\/availability$/, view: availability, nav: "availability" },
  { path: /^\/availability\/(\d+)$/, view: availability, nav: "availability", params: ["id"] },
];

function navItems(user) {
  const items = [];
  if (isSpecialist(user)) items.push(["queue", "#/queue", "Queue", "待办"]);
  if (isClinical(user)) {
    items.push(["consultations", "#/consultations", "Consultations", "会诊"]);
    items.push(["experts", "#/experts", "Find an expert", "找专家"]);
    items.push(["request", "#/request", "Specialty queue request", "专科申请"]);
  } else {
    items.push(["experts", "#/experts", "Experts", "专家"]);
  }
  if (isSpecialist(user) || isManager(user)) items.push(["availability", "#/availability", "Availability", "出诊时间"]);
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
  const role = ROLE[user.role] || [user.role, ""];
  const menuId = "main-nav";
  const toggle = h("button", { type: "button", class: "btn nav-toggle", "aria-controls": menuId, "aria-expanded": "false",
    onclick: () => {
      const open = bar.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", String(open));
    } }, "Menu 菜单");
  mount(bar,
    h("a", { class: "brand", href: homeFor(user) },
      h("img", { src: "/static/img/logo.svg", alt: "", width: 28, height: 28 }),
      h("span", {}, "Yilian ", h("span", { class: "zh" }, "医联"))),
    toggle,
    h("nav", { id: menuId, class: "nav", "aria-label": "Main" },
      navItems(user).map(([key, href, label, zh]) => h("a", { href, class: key === active ? "active" : null,
        "aria-current": key === active ? "page" : null }, label, h("span", { class: "zh" }, zh)))),
    h("div", { class: "who" },
      h("div", { class: "who-text" },
        h("strong", { class: "who-name" }, user.display_name),
        h("span", { class: "who-meta" }, `${role[0]} ${role[1]} · ${inst}`)),
      h("button", { type: "button", class: "btn btn-ghost", id: "logout", onclick: logout }, "Log out 退出")));
  if (isSpecialist(user)) updateQueueCount(bar);
}

/** The number of requests waiting for this specialist, on the Queue link and in the title. */
async function updateQueueCount(bar) {
  try {
    const [mine, queue] = await Promise.all([
      api.get("/api/consultations", { role: "expert", status: "requested" }),
      api.get("/api/consultations", { role: "queue", status: "requested" }),
    ]);
    const n = mine.length + queue.length;
    const link = bar.querySelector('.nav a[href="#/queue"]');
    if (!link) return;
    const old = link.querySelector(".nav-count");
    if (old) old.remove();
    if (n) link.append(h("span", { class: "nav-count", "aria-label": `${n} waiting` }, String(n)));
    document.title = `${n ? `(${n}) ` : ""}Yilian 医联`;
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
  toast("You have logged out. 已退出登录");
}

function endSession(notice) {
  session.clear();
  store.reset();
  topbar().hidden = true;
  mount(topbar());
  if (notice) sessionStorage.setItem("yilian.notice", notice);
  navigate("#/login");
}

let cleanups = [];
let renderSeq = 0;

async function render() {
  const seq = ++renderSeq;
  for (const fn of cleanups.splice(0)) fn();
  const { path, query } = parseHash();
  const user = session.user;
  if (!user || !session.token) {
    if (path !== "/login") { navigate("#/login"); return; }
  }
  const route = ROUTES.find((r) => r.path.test(path));
  if (!route || (route.public && user)) { navigate(user ? homeFor(user) : "#/login"); return; }
  if (route.clinical && !isClinical(user)) { navigate(homeFor(user)); return; }
  const match = path.match(route.path);
  const params = Object.fromEntries((route.params || []).map((name, i) => [name, match[i + 1]]));
  const root = viewEl();
  if (!route.public) {
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
    renderShell(user, typeof route.nav === "function" ? route.nav(query) : route.nav);
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
  if (session.token) endSession("Your session has ended. Please log in again. 登录已过期，请重新登录。");
});
window.addEventListener("yilian:login", (ev) => navigate(homeFor(ev.detail)));
setLocale(session.user?.locale || initialLanguage()).catch((err) => console.error(err)).finally(render);
