// Shared UI pieces: badges, error boxes, toasts, empty states, page headers, the language switch.

import { h, mount } from "../dom.js";
import { term } from "../format.js";
import { LANGUAGES, errorMessage, locale, t } from "../i18n.js";

/** An error as the user reads it. A server's answer (api.js marks it fromServer) is shown by
 * its code (errors.<code>, i18n.errorMessage), else by the server's message; an error made in
 * the browser (a check before sending, the network, a feature's own wording of a server error)
 * carries the message its maker chose, already in the user's language. */
export function errorText(err) {
  if (err && !err.fromServer && err.message) return err.message;
  return errorMessage(err);
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, dataset: { status } }, term("status", status));
}

export function urgencyBadge(urgency) {
  return h("span", { class: `badge urgency-${urgency}` }, term("urgency", urgency));
}

export function kindLabel(kind) {
  return h("span", { class: "kind" }, term("kind", kind));
}

// Older call sites pass a second language's text after the title (or the empty state's text);
// it is ignored now that the first argument is already in the user's language.
const isNode = (x) => x instanceof Node || Array.isArray(x);

/** The page's title (h1) and its action buttons: pageHeader(title, ...actions). */
export function pageHeader(title, ...actions) {
  const acts = actions.filter((a, i) => !(i === 0 && !isNode(a)) && a !== null && a !== undefined && a !== false);
  return h("div", { class: "page-header" },
    h("h1", { tabindex: "-1" }, title),
    acts.length ? h("div", { class: "page-actions" }, acts) : null);
}

/** An alert box showing an ApiError (or any error) in the user's language, with its field
 * problems; the server's own wording stays available under "details" for support. */
export function errorBox(err) {
  const lines = err && Array.isArray(err.fieldErrors) ? err.fieldErrors : [];
  const message = errorText(err);
  const raw = err && err.fromServer && err.message && err.message !== message ? err.message : null;
  return h("div", { class: "alert alert-error", role: "alert", dataset: { code: (err && err.code) || "" } },
    h("strong", {}, message),
    lines.length ? h("ul", {}, lines.map((l) => h("li", {}, l))) : null,
    raw ? h("details", { class: "error-raw" }, h("summary", {}, t("errors.technical_details")), h("code", { lang: "en" }, raw)) : null);
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

/** An empty-list message with an optional action: emptyState(text, action). */
export function emptyState(text, ...rest) {
  const action = rest.find(isNode) || null;
  return h("div", { class: "empty" }, h("p", {}, text), action);
}

export function loading(text) {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text || t("common.loading"));
}

export function toast(message, kind = "ok") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast toast-${kind}` }, message);
  box.append(el);
  setTimeout(() => el.classList.add("leaving"), 4200);
  setTimeout(() => el.remove(), 4700);
}

/** Run an async action from a button: disables it meanwhile, reports errors into a slot or a toast. */
export async function busy(button, fn, errors) {
  if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
  try {
    if (errors) errors.clear();
    return await fn();
  } catch (err) {
    if (errors) errors.show(err);
    else toast(errorText(err), "error");
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

/** The button that switches to the other language; it names that language in that language
 * (common.other_language). The shell listens for the event. */
export function languageSwitch() {
  const other = LANGUAGES.find((l) => l !== locale());
  return h("button", {
    type: "button", class: "btn btn-ghost lang-switch", lang: other, "aria-label": t("common.switch_language_label"),
    title: t("common.switch_language_label"), dataset: { lang: other },
    onclick: () => window.dispatchEvent(new CustomEvent("yilian:switch-language", { detail: other })),
  }, t("common.other_language"));
}
