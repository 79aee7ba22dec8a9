// "My consultations": everything this user may see, by tab (active / completed / closed).

import { api } from "../api.js";
import { field, h, mount, newId, select } from "../dom.js";
import { KIND } from "../format.js";
import { isSpecialist } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { consultationTable } from "./list.js";

const TABS = [
  ["active", "Active", "进行中", ["requested", "accepted", "in_progress"]],
  ["completed", "Completed", "已完成", ["completed"]],
  ["closed", "Closed", "已关闭", ["declined", "cancelled", "no_show", "expired"]],
  ["all", "All", "全部", null],
];

export async function render({ root, query, user, onCleanup, isCurrent }) {
  const tab = TABS.find((t) => t[0] === query.tab) || TABS[0];
  const kind = select({ name: "kind" }, [["", "All kinds 全部类型"], ...Object.entries(KIND).map(([k, [e, z]]) => [k, `${e} ${z}`])], query.kind || "");
  const scopeOptions = [["", "All I can see 全部"], ["requester", "Requested by me 我申请的"]];
  if (isSpecialist(user)) scopeOptions.push(["expert", "Assigned to me 分配给我的"]);
  const scope = select({ name: "role" }, scopeOptions, query.role || "");
  const body = h("div", { class: "list-body" }, loading());
  const counts = new Map();
  const link = (t) => {
    const q = new URLSearchParams({ tab: t });
    if (kind.value) q.set("kind", kind.value);
    if (scope.value) q.set("role", scope.value);
    return `#/consultations?${q}`;
  };
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Consultation status" });
  const drawTabs = () => mount(tabs, TABS.map(([key, en, zh]) => h("a", {
    href: link(key), role: "tab", id: `tab-${key}`, "aria-selected": String(key === tab[0]), class: key === tab[0] ? "active" : null,
  }, en, h("span", { class: "zh" }, ` ${zh}`), counts.has(key) ? h("span", { class: "count" }, counts.get(key)) : null)));
  drawTabs();
  const go = () => { window.location.hash = link(tab[0]); };
  kind.addEventListener("change", go);
  scope.addEventListener("change", go);

  async function load() {
    try {
      const rows = await api.get("/api/consultations", { kind: kind.value, role: scope.value });
      if (!isCurrent()) return;
      for (const [key, , , states] of TABS) counts.set(key, states ? rows.filter((c) => states.includes(c.status)).length : rows.length);
      drawTabs();
      const shown = tab[3] ? rows.filter((c) => tab[3].includes(c.status)) : rows;
      mount(body, shown.length
        ? consultationTable(shown, { caption: `${tab[1]} consultations` })
        : emptyState(tab[0] === "active" ? "No active consultations." : "Nothing here yet.", "暂无会诊",
          h("a", { class: "btn btn-primary", href: "#/experts" }, "Find an expert 找专家")));
    } catch (err) {
      if (isCurrent()) mount(body, errorBox(err));
    }
  }

  const refresh = h("button", { type: "button", class: "btn", onclick: load }, "Refresh 刷新");
  mount(root,
    pageHeader("Consultations", "会诊", refresh, h("a", { class: "btn btn-primary", href: "#/experts" }, "New request 新申请")),
    h("div", { class: "toolbar" }, tabs,
      h("form", { class: "filters inline", "aria-label": "Filter consultations", onsubmit: (e) => e.preventDefault() },
        field("Kind 类型", kind), field("Show 范围", scope))),
    h("div", { role: "tabpanel", "aria-labelledby": `tab-${tab[0]}`, id: newId("panel") }, body));
  // Refresh in the background, but not under an open dialog or in a hidden tab.
  const timer = setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) load(); }, 30000);
  onCleanup(() => clearInterval(timer));
  await load();
}
