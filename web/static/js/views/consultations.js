// "My consultations": everything this user may see, by tab (active / completed / closed).

import { api } from "../api.js";
import { field, h, mount, newId, select } from "../dom.js";
import { term } from "../format.js";
import { t } from "../i18n.js";
import { isSpecialist } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { consultationTable } from "./list.js";

const KINDS = ["video", "outpatient", "imaging", "pathology"];
const TABS = [
  ["active", ["requested", "accepted", "in_progress"]],
  ["completed", ["completed"]],
  ["closed", ["declined", "cancelled", "no_show", "expired"]],
  ["all", null],
];

export async function render({ root, query, user, onCleanup, isCurrent }) {
  const tab = TABS.find((x) => x[0] === query.tab) || TABS[0];
  const kind = select({ name: "kind" }, [["", t("consultations.all_kinds")], ...KINDS.map((k) => [k, term("kind", k)])], query.kind || "");
  const scopeOptions = [["", t("consultations.scope_all")], ["requester", t("consultations.scope_requester")]];
  if (isSpecialist(user)) scopeOptions.push(["expert", t("consultations.scope_expert")]);
  const scope = select({ name: "role" }, scopeOptions, query.role || "");
  const body = h("div", { class: "list-body" }, loading());
  const counts = new Map();
  const link = (key) => {
    const q = new URLSearchParams({ tab: key });
    if (kind.value) q.set("kind", kind.value);
    if (scope.value) q.set("role", scope.value);
    return `#/consultations?${q}`;
  };
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": t("consultations.tabs_label") });
  const drawTabs = () => mount(tabs, TABS.map(([key]) => h("a", {
    href: link(key), role: "tab", id: `tab-${key}`, "aria-selected": String(key === tab[0]), class: key === tab[0] ? "active" : null,
  }, t(`consultations.tab_${key}`), counts.has(key) ? h("span", { class: "count" }, counts.get(key)) : null)));
  drawTabs();
  const go = () => { window.location.hash = link(tab[0]); };
  kind.addEventListener("change", go);
  scope.addEventListener("change", go);

  async function load() {
    try {
      const rows = await api.get("/api/consultations", { kind: kind.value, role: scope.value });
      if (!isCurrent()) return;
      for (const [key, states] of TABS) counts.set(key, states ? rows.filter((c) => states.includes(c.status)).length : rows.length);
      drawTabs();
      const shown = tab[1] ? rows.filter((c) => tab[1].includes(c.status)) : rows;
      mount(body, shown.length
        ? consultationTable(shown, { caption: t(`consultations.caption_${tab[0]}`) })
        : emptyState(t(tab[0] === "active" ? "consultations.empty_active" : "consultations.empty"),
          h("a", { class: "btn btn-primary", href: "#/experts" }, t("consultations.find_expert"))));
    } catch (err) {
      if (isCurrent()) mount(body, errorBox(err));
    }
  }

  const refresh = h("button", { type: "button", class: "btn", onclick: load }, t("common.refresh"));
  mount(root,
    pageHeader(t("consultations.title"), refresh, h("a", { class: "btn btn-primary", href: "#/experts" }, t("consultations.new_request"))),
    h("div", { class: "toolbar" }, tabs,
      h("form", { class: "filters inline", "aria-label": t("consultations.filters_label"), onsubmit: (e) => e.preventDefault() },
        field(t("consultations.filter_kind"), kind), field(t("consultations.filter_scope"), scope))),
    h("div", { role: "tabpanel", "aria-labelledby": `tab-${tab[0]}`, id: newId("panel") }, body));
  // Refresh in the background, but not under an open dialog or in a hidden tab.
  const timer = setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) load(); }, 30000);
  onCleanup(() => clearInterval(timer));
  await load();
}
