// The referral inbox: incoming and outgoing referrals, green channel first with a running
// clock, filtered by open/closed and direction; it redraws live on referral notifications.

import { api } from "../api.js";
import { field, h, mount, newId, select } from "../dom.js";
import { term } from "../format.js";
import { t } from "../i18n.js";
import { isSpecialist } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { startTicker } from "../features/referral-clock.js";
import { onReferralNews } from "../features/referral-live.js";
import { referralCard } from "../features/referral-ui.js";

const BOXES = ["incoming", "outgoing"];
const STATES = ["open", "closed", "all"];

/** The box a user starts in: the upper levels mostly receive, the grassroots mostly send. */
export const defaultBox = (user) => (isSpecialist(user) ? "incoming" : "outgoing");

function listQuery(box, state, direction) {
  const q = { box };
  if (state !== "all") q.open = state === "open" ? "true" : "false";
  if (direction) q.direction = direction;
  return q;
}

export async function render({ root, query, user, onCleanup, isCurrent }) {
  // Without a chosen tab, the user's usual one, unless only the other holds referrals.
  const chosen = BOXES.includes(query.box) ? query.box : null;
  let box = chosen || defaultBox(user);
  const state = STATES.includes(query.state) ? query.state : "open";
  const stateSel = select({ name: "state" }, STATES.map((s) => [s, t(`referrals.state_${s}`)]), state);
  const dirSel = select({ name: "direction" }, [["", t("referrals.direction_any")], ["up", term("direction", "up")], ["down", term("direction", "down")]], query.direction || "");
  const link = (b) => {
    const q = new URLSearchParams({ box: b, state: stateSel.value });
    if (dirSel.value) q.set("direction", dirSel.value);
    return `#/referrals?${q}`;
  };
  const counts = new Map();
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": t("referrals.tabs_label") });
  const drawTabs = () => mount(tabs, BOXES.map((b) => h("a", {
    href: link(b), role: "tab", id: `tab-${b}`, "aria-selected": String(b === box), class: b === box ? "active" : null,
  }, t(`referrals.box_${b}`), counts.has(b) ? h("span", { class: ["count", counts.get(b).green && "count-green"] }, counts.get(b).n) : null)));
  drawTabs();
  const go = () => { window.location.hash = link(box); };
  stateSel.addEventListener("change", go);
  dirSel.addEventListener("change", go);

  const body = h("div", { class: "list-body ref-list-body", "aria-live": "polite" }, loading());
  const panel = h("div", { role: "tabpanel", "aria-labelledby": `tab-${box}`, id: newId("panel") }, body);

  async function load() {
    let lists;
    try {
      lists = await Promise.all(BOXES.map((b) => api.get("/api/referrals", listQuery(b, state, dirSel.value))));
    } catch (err) {
      if (isCurrent()) mount(body, errorBox(err));
      return;
    }
    if (!isCurrent()) return;
    BOXES.forEach((b, i) => counts.set(b, { n: lists[i].length, green: lists[i].some((r) => r.green_channel && r.status === "requested") }));
    if (!chosen) {
      const other = BOXES.find((b) => b !== box);
      if (!counts.get(box).n && counts.get(other).n) box = other;
    }
    panel.setAttribute("aria-labelledby", `tab-${box}`);
    drawTabs();
    const rows = lists[BOXES.indexOf(box)];
    const green = rows.filter((r) => r.green_channel);
    const other = rows.filter((r) => !r.green_channel);
    if (!rows.length) {
      mount(body, emptyState(t(`referrals.empty_${box}_${state}`),
        box === "outgoing" ? h("a", { class: "btn btn-primary", href: "#/referrals/new" }, t("referrals.new")) : null));
      return;
    }
    mount(body,
      green.length ? h("section", { class: "ref-section ref-section-green", "aria-labelledby": "ref-green-title" },
        h("h2", { id: "ref-green-title", class: "ref-section-title" }, t("referrals.section_green", { n: green.length })),
        h("div", { class: "ref-cards" }, green.map(referralCard))) : null,
      other.length ? h("section", { class: "ref-section", "aria-labelledby": "ref-other-title" },
        green.length ? h("h2", { id: "ref-other-title", class: "ref-section-title" }, t("referrals.section_other", { n: other.length })) : null,
        h("div", { class: "ref-cards" }, other.map(referralCard))) : null);
  }

  mount(root,
    pageHeader(t("referrals.title"),
      h("button", { type: "button", class: "btn", onclick: load }, t("common.refresh")),
      isSpecialist(user) ? h("a", { class: "btn", href: "#/on-call" }, t("referrals.on_call_roster")) : null,
      h("a", { class: "btn btn-primary", href: "#/referrals/new" }, t("referrals.new"))),
    h("div", { class: "toolbar" }, tabs,
      h("form", { class: "filters inline", "aria-label": t("referrals.filters_label"), onsubmit: (e) => e.preventDefault() },
        field(t("referrals.filter_state"), stateSel), field(t("referrals.filter_direction"), dirSel))),
    panel);
  startTicker(root, onCleanup);
  onReferralNews(() => { if (isCurrent()) load(); }, { onCleanup });
  await load();
}
