// Pieces shared by the teaching screens: kind and status badges, the time range, a session's
// card in the list, and how its invitations read.

import { h } from "../dom.js";
import { fmtDateTime, fmtTime, dayKey } from "../format.js";
import { intlLocale, locale, t } from "../i18n.js";
import { store } from "../store.js";

export const KINDS = ["rounds", "lecture", "surgery_demo", "training"];

export const kindText = (kind) => t(`teaching.kind_${KINDS.includes(kind) ? kind : "lecture"}`);

export function kindBadge(kind) {
  return h("span", { class: `badge teach-kind teach-kind-${kind}`, dataset: { kind } }, kindText(kind));
}

export function teachingStatus(status) {
  return h("span", { class: `badge teach-status teach-status-${status}`, dataset: { status } }, t(`teaching.status_${status}`));
}

/** "Mon 30 Nov, 14:00–15:30" (the end's date only when it is another day). */
export function timeRange(s) {
  const end = dayKey(s.start) === dayKey(s.end) ? fmtTime(s.end) : fmtDateTime(s.end);
  return t("teaching.when", { start: fmtDateTime(s.start), end });
}

/** The invited institutions' names, in the reader's language where the store knows them. */
export function invitedNames(s) {
  return (s.invited_institutions || []).map((i) => {
    if (store.institutions.has(i.id)) return store.institutionName(i.id);
    return locale() === "zh-CN" && i.local_name ? i.local_name : i.name;
  });
}

/** A session in the list, with the action that fits its state. */
export function sessionCard(s) {
  const href = `#/teaching/${s.id}`;
  const actions = [];
  if (s.status === "live") actions.push(h("a", { class: "btn btn-primary", href }, t("teaching.join")));
  else actions.push(h("a", { class: "btn", href }, t("teaching.open")));
  if (s.status === "ended" && (s.recordings || []).length) actions.push(h("a", { class: "btn", href: `${href}?replay=1` }, t("teaching.replay")));
  if (s.status === "ended" && s.can && s.can.attendance) actions.push(h("a", { class: "btn", href: `${href}/attendance` }, t("teaching.attendance")));
  const names = invitedNames(s);
  return h("article", { class: ["teach-card", s.status === "live" && "teach-card-live"], dataset: { id: s.id, status: s.status } },
    h("div", { class: "teach-card-head" }, teachingStatus(s.status), kindBadge(s.kind)),
    h("h3", { class: "teach-card-title" }, h("a", { href }, s.title)),
    h("p", { class: "teach-card-when" }, h("time", { datetime: s.start }, timeRange(s))),
    s.presenter ? h("p", { class: "muted" }, t("teaching.presenter_line", { name: s.presenter.display_name })) : null,
    names.length ? h("p", { class: "muted small", title: new Intl.ListFormat(intlLocale()).format(names) }, t("teaching.invited_count", { n: names.length })) : null,
    h("div", { class: "teach-card-actions" }, actions));
}
