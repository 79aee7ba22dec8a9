// Languages: Chinese by default, English by a switch. Every visible string comes from the
// per-language tables in web/locales/<language>/<namespace>.json, which the server serves
// merged as /locales/<language>.json. Keys are "namespace.key"; "{name}" placeholders are
// filled from the params object.

export const LANGUAGES = ["zh-CN", "en"];
export const DEFAULT_LANGUAGE = "zh-CN";
const STORAGE_KEY = "yilian.locale"; // the last language used in this browser, before login

let current = DEFAULT_LANGUAGE;
let tables = {};
const listeners = new Set();

/** The language in use: "zh-CN" or "en". */
export function locale() {
  return current;
}

/** BCP 47 tag for Intl formatters. */
export function intlLocale() {
  return current === "en" ? "en-GB" : "zh-CN";
}

/** The language to start with: the one last used in this browser, else Chinese. */
export function initialLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  return LANGUAGES.includes(saved) ? saved : DEFAULT_LANGUAGE;
}

/** Load a language's tables and make it current; listeners re-render. */
export async function setLocale(language) {
  const lang = LANGUAGES.includes(language) ? language : DEFAULT_LANGUAGE;
  const res = await fetch(`/locales/${lang}.json`, { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(`language table ${lang}: HTTP ${res.status}`);
  tables = await res.json();
  current = lang;
  localStorage.setItem(STORAGE_KEY, lang);
  document.documentElement.lang = lang;
  for (const fn of listeners) fn(lang);
  return lang;
}

/** Call fn(language) after every language change; returns an unsubscribe function. */
export function onLocaleChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Whether the current language has this key. */
export function has(key) {
  const dot = key.indexOf(".");
  const table = tables[key.slice(0, dot)];
  return Boolean(table && Object.prototype.hasOwnProperty.call(table, key.slice(dot + 1)));
}

/** The keys of a namespace that start with prefix, without it: keys("terms", "specialty_")
 * lists the specialty codes the tables name. */
export function keys(namespace, prefix) {
  return Object.keys(tables[namespace] || {}).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
}

/** The text for "namespace.key" in the current language, placeholders filled. */
export function t(key, params) {
  const dot = key.indexOf(".");
  const table = tables[key.slice(0, dot)];
  let text = table ? table[key.slice(dot + 1)] : undefined;
  if (text === undefined) {
    console.warn(`i18n: no text for ${key} in ${current}`);
    text = key;
  }
  if (params) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  return text;
}

/** A server or network error as a message in the current language: its code's text when the
 * tables have one ("errors.<code>"), else the server's own message. */
export function errorMessage(err) {
  const code = err && err.code;
  if (code && has(`errors.${code}`)) return t(`errors.${code}`, err.details || {});
  return (err && err.message) || t("errors.unknown");
}
