// The specialist's work queue: requests waiting for them (assigned or in their specialty queue),
// sorted by urgency, then their scheduled and running consultations.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { acceptDialog, declineDialog, simpleAction } from "../features/actions.js";
import { button, busy, emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { consultationTable } from "./list.js";

const RANK = { emergency: 0, urgent: 1, routine: 2 }; // the most urgent first

export async function render({ root, user, navigate, onCleanup, isCurrent }) {
  const waiting = h("div", {}, loading());
  const scheduled = h("div", {}, loading());
  const running = h("div", {}, loading());

  async function load() {
    try {
      const [mine, queue] = await Promise.all([
        api.get("/api/consultations", { role: "expert" }),
        api.get("/api/consultations", { role: "queue", status: "requested" }),
      ]);
      if (!isCurrent()) return;
      const pending = [...mine.filter((c) => c.status === "requested"), ...queue]
        .sort((a, b) => (RANK[a.urgency] - RANK[b.urgency]) || (new Date(a.deadline) - new Date(b.deadline)));
      const upcoming = mine.filter((c) => c.status === "accepted")
        .sort((a, b) => new Date(a.slot ? a.slot.start : a.deadline) - new Date(b.slot ? b.slot.start : b.deadline));
      const live = mine.filter((c) => c.status === "in_progress");
      mount(waiting, pending.length ? consultationTable(pending, { caption: t("queue.waiting"), showRequester: true, actions: (c) => [
        button(t("actions.accept"), { class: "btn btn-primary btn-sm", onclick: async () => { if (await acceptDialog(c, user)) load(); } }),
        button(t("actions.decline"), { class: "btn btn-sm", onclick: async () => { if (await declineDialog(c)) load(); } }),
      ] }) : emptyState(t("queue.empty_waiting")));
      mount(scheduled, upcoming.length ? consultationTable(upcoming, { caption: t("queue.scheduled"), showRequester: true, actions: (c) => [
        button(t("actions.start_short"), { class: "btn btn-primary btn-sm", onclick: (ev) => busy(ev.currentTarget, async () => { await simpleAction(c, "start"); navigate(`#/consultations/${c.id}`); }) }),
      ] }) : emptyState(t("queue.empty_scheduled")));
      mount(running, live.length ? consultationTable(live, { caption: t("queue.in_progress"), showRequester: true, actions: (c) => [
        h("a", { class: "btn btn-primary btn-sm", href: `#/consultations/${c.id}` }, c.report_status === "signed" ? t("queue.complete") : t("queue.write_report")),
      ] }) : emptyState(t("queue.empty_in_progress")));
    } catch (err) {
      if (isCurrent()) mount(waiting, errorBox(err));
    }
  }

  mount(root,
    pageHeader(t("queue.title"), button(t("common.refresh"), { onclick: load })),
    h("section", { class: "section", "aria-labelledby": "q-wait" }, h("h2", { id: "q-wait" }, t("queue.waiting"), h("span", { class: "muted small" }, ` · ${t("queue.most_urgent_first")}`)), waiting),
    h("section", { class: "section", "aria-labelledby": "q-live" }, h("h2", { id: "q-live" }, t("queue.in_progress")), running),
    h("section", { class: "section", "aria-labelledby": "q-sched" }, h("h2", { id: "q-sched" }, t("queue.scheduled")), scheduled));
  // Refresh in the background, but not under an open dialog or in a hidden tab.
  const timer = setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) load(); }, 30000);
  onCleanup(() => clearInterval(timer));
  await load();
}
