// Questions in a teaching room: chat kept with the session. Viewers ask; everyone sees them in
// order; the presenter marks one answered, and the room sees it at once.

import { h, mount } from "../dom.js";
import { fmtDateTimeYear, fmtTime } from "../format.js";
import { errorMessage, t } from "../i18n.js";
import { toast } from "../ui/components.js";

/**
 * The questions panel. `initial` is GET …/questions; `link` (a TeachingLink, or null after the
 * end) carries new ones; `presenter` shows "mark answered"; `canAsk` shows the form.
 */
export function questionsPanel({ initial, link, presenter, canAsk, me }) {
  const byId = new Map();
  const list = h("ol", { class: "teach-questions", "aria-live": "polite", "aria-label": t("teaching.questions") });
  const counter = h("span", { class: "teach-open-count muted small" });
  const empty = h("p", { class: "muted teach-questions-empty" }, t("teaching.questions_none"));

  const countOpen = () => {
    const open = [...byId.values()].filter((q) => !q.answered_at).length;
    counter.textContent = open ? t("teaching.questions_open", { n: open }) : "";
    empty.hidden = byId.size > 0;
  };

  const draw = (q) => {
    const answered = Boolean(q.answered_at);
    const mark = presenter && !answered && link && q.id != null
      ? h("button", { type: "button", class: "btn btn-sm", onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try { await link.markAnswered(q.id); } catch (err) { toast(errorMessage(err), "error"); ev.target.disabled = false; }
      } }, t("teaching.mark_answered"))
      : null;
    const mine = me && q.user_id === me.id;
    const who = [q.display_name, q.institution_name].filter(Boolean).join(" · ");
    return h("li", { class: ["teach-question", answered && "answered", mine && "mine"], dataset: { id: q.id ?? "" } },
      h("div", { class: "chat-meta" }, h("strong", {}, who || "—"), " ",
        h("time", { datetime: q.at, title: fmtDateTimeYear(q.at) }, fmtTime(q.at)),
        answered ? h("span", { class: "badge teach-answered" }, t("teaching.answered")) : null),
      h("p", { class: "prewrap" }, q.text),
      mark);
  };

  const put = (q) => {
    const old = byId.get(q.id);
    byId.set(q.id, { ...(old || {}), ...q });
    const li = draw(byId.get(q.id));
    const existing = q.id != null ? list.querySelector(`li[data-id="${CSS.escape(String(q.id))}"]`) : null;
    if (existing) existing.replaceWith(li);
    else list.append(li);
    countOpen();
  };

  for (const q of initial || []) put(q);
  if (link) {
    link.addEventListener("chat", ({ detail: m }) => {
      put({ id: m.id, user_id: m.user_id, display_name: m.display_name || (me && m.user_id === me.id ? me.display_name : link.nameOf(m.from)), institution_name: m.institution_name, text: m.text, at: m.at, answered_at: null });
      list.scrollTop = list.scrollHeight;
    });
    link.addEventListener("answered", ({ detail: a }) => {
      const q = byId.get(a.id);
      if (q) put({ ...q, answered_at: a.at || new Date().toISOString() });
    });
  }

  let form = null;
  if (canAsk && link) {
    const input = h("textarea", { name: "question", rows: 2, maxlength: 2000, "aria-label": t("teaching.ask"), placeholder: t("teaching.ask") });
    const send = h("button", { type: "submit", class: "btn btn-primary" }, t("teaching.ask_send"));
    form = h("form", { class: "chat-form teach-ask" }, input, send);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      send.disabled = true;
      try {
        await link.ask(text);
        input.value = "";
      } catch (err) {
        toast(errorMessage(err), "error");
      } finally {
        send.disabled = false;
      }
    });
  }
  countOpen();
  const el = h("section", { class: "panel teach-questions-panel", "aria-labelledby": "teach-q-title" },
    h("h2", { id: "teach-q-title" }, t("teaching.questions"), " ", counter), empty, list, form);
  return { el, reset: (rows) => { byId.clear(); mount(list); (rows || []).forEach(put); } };
}
