// The teaching sessions: live ones first and prominent (with "join"), then upcoming, then past
// (with replay and attendance), filtered by kind; "schedule" for those who may.

import { api } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { t } from "../i18n.js";
import { isClinical, isManager } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { KINDS, kindText, sessionCard } from "../features/teaching-ui.js";

/** Who may schedule: clinicians (they present or invite a colleague), coordinators, admins. */
export const maySchedule = (user) => isClinical(user) || isManager(user);

const SECTIONS = [
  ["live", (s) => s.status === "live", (a, b) => a.start.localeCompare(b.start)],
  ["upcoming", (s) => s.status === "scheduled", (a, b) => a.start.localeCompare(b.start)],
  ["past", (s) => s.status === "ended", (a, b) => b.start.localeCompare(a.start)],
];

export async function render({ root, query, user, isCurrent }) {
  const kind = KINDS.includes(query.kind) ? query.kind : "";
  const kindSel = select({ name: "kind" }, [["", t("teaching.kind_any")], ...KINDS.map((k) => [k, kindText(k)])], kind);
  kindSel.addEventListener("change", () => { window.location.hash = kindSel.value ? `#/teaching?kind=${kindSel.value}` : "#/teaching"; });
  const body = h("div", { class: "teach-list", "aria-live": "polite" }, loading());

  async function load() {
    let rows;
    try {
      rows = await api.get("/api/teaching-sessions");
    } catch (err) {
      if (isCurrent()) mount(body, errorBox(err));
      return;
    }
    if (!isCurrent()) return;
    const shown = kind ? rows.filter((s) => s.kind === kind) : rows;
    if (!shown.length) {
      mount(body, emptyState(t(kind ? "teaching.empty_kind" : "teaching.empty"),
        maySchedule(user) ? h("a", { class: "btn btn-primary", href: "#/teaching/new" }, t("teaching.schedule")) : null));
      return;
    }
    mount(body, SECTIONS.map(([name, keep, order]) => {
      const list = shown.filter(keep).sort(order);
      if (!list.length) return null;
      const titleId = `teach-${name}-title`;
      return h("section", { class: `teach-section teach-section-${name}`, "aria-labelledby": titleId },
        h("h2", { id: titleId }, t(`teaching.section_${name}`, { n: list.length })),
        h("div", { class: "teach-cards" }, list.map(sessionCard)));
    }));
  }

  mount(root,
    pageHeader(t("teaching.title"),
      h("button", { type: "button", class: "btn", onclick: load }, t("teaching.refresh")),
      maySchedule(user) ? h("a", { class: "btn btn-primary", href: "#/teaching/new" }, t("teaching.schedule")) : null),
    h("form", { class: "filters inline", "aria-label": t("teaching.filters_label"), onsubmit: (e) => e.preventDefault() },
      field(t("teaching.filter_kind"), kindSel)),
    body);
  await load();
}
