// The specialist's work queue: requests waiting for them (assigned or in their specialty queue),
// sorted by urgency, then their scheduled and running consultations.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { URGENCY } from "../format.js";
import { acceptDialog, declineDialog, simpleAction } from "../features/actions.js";
import { button, busy, emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { consultationTable } from "./list.js";

const RANK = Object.fromEntries(Object.keys(URGENCY).map((k, i) => [k, i]));

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
      mount(waiting, pending.length ? consultationTable(pending, { caption: "Waiting for acceptance", showRequester: true, actions: (c) => [
        button("Accept 接诊", { class: "btn btn-primary btn-sm", onclick: async () => { if (await acceptDialog(c, user)) load(); } }),
        button("Decline 拒绝", { class: "btn btn-sm", onclick: async () => { if (await declineDialog(c)) load(); } }),
      ] }) : emptyState("No requests are waiting for you.", "暂无待接诊申请"));
      mount(scheduled, upcoming.length ? consultationTable(upcoming, { caption: "Scheduled", showRequester: true, actions: (c) => [
        button("Start 开始", { class: "btn btn-primary btn-sm", onclick: (ev) => busy(ev.currentTarget, async () => { await simpleAction(c, "start"); navigate(`#/consultations/${c.id}`); }) }),
      ] }) : emptyState("Nothing scheduled.", "暂无已排期会诊"));
      mount(running, live.length ? consultationTable(live, { caption: "In progress", showRequester: true, actions: (c) => [
        h("a", { class: "btn btn-primary btn-sm", href: `#/consultations/${c.id}` }, c.report_status === "signed" ? "Complete 完成" : "Write report 写报告"),
      ] }) : emptyState("No consultation in progress.", "暂无进行中的会诊"));
    } catch (err) {
      if (isCurrent()) mount(waiting, errorBox(err));
    }
  }

  mount(root,
    pageHeader("Work queue", "待办队列", button("Refresh 刷新", { onclick: load })),
    h("section", { class: "section", "aria-labelledby": "q-wait" }, h("h2", { id: "q-wait" }, "Waiting for acceptance ", h("span", { class: "zh" }, "待接诊"), h("span", { class: "muted small" }, " · most urgent first")), waiting),
    h("section", { class: "section", "aria-labelledby": "q-live" }, h("h2", { id: "q-live" }, "In progress ", h("span", { class: "zh" }, "进行中")), running),
    h("section", { class: "section", "aria-labelledby": "q-sched" }, h("h2", { id: "q-sched" }, "Scheduled ", h("span", { class: "zh" }, "已排期")), scheduled));
  // Refresh in the background, but not under an open dialog or in a hidden tab.
  const timer = setInterval(() => { if (!document.hidden && !document.querySelector("dialog[open]")) load(); }, 30000);
  onCleanup(() => clearInterval(timer));
  await load();
}
