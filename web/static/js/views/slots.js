// One expert's slots over two weeks, grouped by day; a free slot leads to the request form.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { TZ_OFFSET, dayKey, fmtDate, fmtTime } from "../format.js";
import { t } from "../i18n.js";
import { isClinical, store } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { expertCard } from "./experts.js";

const DAY = 86400000;
const statusText = (status) => t(`slots.status_${status}`);

/** Slots grouped by Shanghai day: [[dayKey, [slots]]] in order. */
export function byDay(slots) {
  const days = new Map();
  for (const s of slots) {
    const k = dayKey(s.start);
    if (!days.has(k)) days.set(k, []);
    days.get(k).push(s);
  }
  return [...days.entries()];
}

export async function render({ root, params, query, user }) {
  const id = Number(params.id);
  let expert = store.expertsById.get(id);
  if (!expert) {
    const all = await api.get("/api/experts");
    store.setExperts(all);
    expert = store.expertsById.get(id);
  }
  if (!expert) {
    mount(root, pageHeader(t("slots.not_found"), null),
      emptyState(t("slots.not_found_text"), null, h("a", { class: "btn", href: "#/experts" }, t("slots.back_experts"))));
    return;
  }
  const canBook = isClinical(user) && expert.id !== user.id;
  const offset = Math.max(0, Number(query.week || 0));
  // Whole Shanghai days, two weeks a page; the first page starts now (no past slots).
  const today = new Date(`${dayKey(new Date())}T00:00:00${TZ_OFFSET}`);
  const first = new Date(today.getTime() + offset * 14 * DAY);
  const from = offset ? first : new Date();
  const to = new Date(first.getTime() + 14 * DAY);
  const showAll = query.all === "1";
  const grid = h("div", { class: "slot-days" }, loading(t("slots.loading")));
  const link = (week, all) => `#/experts/${id}?week=${week}${all ? "&all=1" : ""}`;

  mount(root,
    pageHeader(`${expert.display_name} · ${t("slots.title")}`, null,
      h("a", { class: "btn", href: "#/experts" }, t("slots.all_experts"))),
    h("div", { class: "split" },
      h("div", { class: "split-side" }, expertCard(expert, { user, compact: true })),
      h("section", { class: "split-main", "aria-labelledby": "slots-title" },
        h("div", { class: "toolbar" },
          h("h2", { id: "slots-title" }, t("slots.range", { from: fmtDate(first), to: fmtDate(new Date(to.getTime() - DAY)) }),
            h("span", { class: "muted small" }, ` · ${t("slots.beijing_time")}`)),
          h("div", { class: "toolbar-actions" },
            offset > 0 ? h("a", { class: "btn", href: link(offset - 1, showAll), dataset: { action: "earlier" } }, t("slots.earlier")) : null,
            h("a", { class: "btn", href: link(offset + 1, showAll), dataset: { action: "later" } }, t("slots.later")),
            h("a", { class: "btn btn-ghost", href: link(offset, !showAll), "aria-pressed": String(showAll), dataset: { action: "show-all" } },
              showAll ? t("slots.only_free") : t("slots.show_all")))),
        grid)));

  try {
    const slots = await api.get(`/api/experts/${id}/slots`, { from: from.toISOString(), to: to.toISOString(), status: showAll ? "" : "free" });
    const days = byDay(slots);
    if (!days.length) {
      mount(grid, emptyState(t("slots.none"), null, h("a", { class: "btn", href: link(offset + 1, showAll) }, t("slots.next_weeks"))));
      return;
    }
    mount(grid, days.map(([key, list]) => h("section", { class: "slot-day", "aria-label": fmtDate(list[0].start) },
      h("h3", {}, fmtDate(list[0].start)),
      h("ul", { class: "slot-list" }, list.map((s) => h("li", {},
        s.status === "free" && canBook
          ? h("a", { class: "slot-btn free", href: `#/request?expert=${id}&slot=${s.id}`, dataset: { slotId: s.id, day: key },
            "aria-label": t("slots.book", { day: fmtDate(s.start), time: fmtTime(s.start) }) }, fmtTime(s.start))
          : h("span", { class: `slot-btn ${s.status}`, title: statusText(s.status), dataset: { slotId: s.id, status: s.status } }, fmtTime(s.start),
            s.status === "free" ? null : h("span", { class: "sr-only" }, ` ${statusText(s.status)}`))))))));
  } catch (err) {
    mount(grid, errorBox(err));
  }
}
