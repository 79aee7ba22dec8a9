// Shared UI pieces: badges, error boxes, toasts, empty states, page headers.

import { h, mount } from "../dom.js";
import { KIND, STATUS, URGENCY } from "../format.js";

export function statusBadge(status) {
  const [en, zh] = STATUS[status] || [status, ""];
  return h("span", { class: `badge status-${status}`, dataset: { status } }, en, zh ? h("span", { class: "zh" }, zh) : null);
}

export function urgencyBadge(urgency) {
  const [en, zh] = URGENCY[urgency] || [urgency, ""];
  return h("span", { class: `badge urgency-${urgency}` }, en, h("span", { class: "zh" }, zh));
}

export function kindLabel(kind) {
  const [en, zh] = KIND[kind] || [kind, ""];
  return h("span", { class: "kind" }, en, " ", h("span", { class: "zh" }, zh));
}

export function pageHeader(title, zh, ...actions) {
  return h("div", { class: "page-header" },
    h("h1", { tabindex: "-1" }, title, zh ? h("span", { class: "zh" }, ` ${zh}`) : null),
    actions.length ? h("div", { class: "page-actions" }, actions) : null);
}

/** An alert box showing an ApiError (or any error) message and its field problems. */
export function errorBox(err) {
  const lines = err && err.fieldErrors ? err.fieldErrors : [];
  return h("div", { class: "alert alert-error", role: "alert" },
    h("strong", {}, err ? err.message : "Something went wrong"),
    lines.length ? h("ul", {}, lines.map((l) => h("li", {}, l))) : null);
}

/** A slot in forms where errors appear; returns {el, show(err), clear()}. */
export function errorSlot() {
  const el = h("div", { class: "error-slot" });
  return {
    el,
    show(err) { mount(el, errorBox(err)); el.scrollIntoView({ block: "nearest" }); },
    clear() { mount(el); },
  };
}

export function emptyState(text, zh, action) {
  return h("div", { class: "empty" }, h("p", {}, text, zh ? h("span", { class: "zh" }, ` ${zh}`) : null), action || null);
}

export function loading(text = "Loading… 加载中") {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const t = h("div", { class: `toast toast-${kind}` }, message);
  box.append(t);
  setTimeout(() => t.classList.add("leaving"), 4200);
  setTimeout(() => t.remove(), 4700);
}

/** Run an async action from a button: disables it meanwhile, reports errors into a slot or a toast. */
export async function busy(button, fn, errors) {
  if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
  try {
    if (errors) errors.clear();
    return await fn();
  } catch (err) {
    if (errors) errors.show(err);
    else toast(err.message, "error");
    return undefined;
  } finally {
    if (button && button.isConnected) { button.disabled = false; button.removeAttribute("aria-busy"); }
  }
}

export function button(label, props = {}) {
  return h("button", { type: "button", class: "btn", ...props }, label);
}

export function dl(rows) {
  return h("dl", { class: "facts" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}
