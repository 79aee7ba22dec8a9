// The consultation table used by the list and the queue.

import { h } from "../dom.js";
import { fmtDateTime, fmtSlot, patientLine, relative, specialtyLabel } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { kindLabel, statusBadge, urgencyBadge } from "../ui/components.js";

const reportLabel = (status) => (!status || status === "none" ? "—" : t(`consultations.report_${status}`));

export function whoLine(c) {
  if (c.expert_id) {
    const expert = store.expertsById.get(c.expert_id);
    const name = store.personName(c.expert_id, c);
    return expert ? `${name} · ${store.institutionName(expert.institution_id)}` : name;
  }
  const bits = [t("consultations.queue")];
  if (c.specialty) bits.push(specialtyLabel(c.specialty));
  if (c.target_institution_id) bits.push(store.institutionName(c.target_institution_id));
  return bits.join(" · ");
}

export function consultationTable(rows, { caption, actions, showRequester = false } = {}) {
  const col = {
    patient: t("consultations.col_patient"), kind: t("consultations.col_kind"),
    who: showRequester ? t("consultations.col_from") : t("consultations.col_expert"),
    time: t("consultations.col_time"), status: t("consultations.col_status"), report: t("consultations.col_report"),
  };
  return h("div", { class: "table-wrap" }, h("table", { class: "table consultations" },
    caption ? h("caption", { class: "sr-only" }, caption) : null,
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "#"),
      h("th", { scope: "col" }, col.patient),
      h("th", { scope: "col" }, col.kind),
      h("th", { scope: "col" }, col.who),
      h("th", { scope: "col" }, col.time),
      h("th", { scope: "col" }, col.status),
      h("th", { scope: "col" }, col.report),
      actions ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("consultations.col_actions"))) : null)),
    h("tbody", {}, rows.map((c) => h("tr", { dataset: { id: c.id, status: c.status }, class: `urgency-row-${c.urgency}` },
      h("td", { "data-label": "#" }, h("a", { href: `#/consultations/${c.id}`, class: "id-link" }, `#${c.id}`)),
      h("td", { "data-label": col.patient },
        h("a", { href: `#/consultations/${c.id}`, class: "strong" }, patientLine(c.patient)),
        h("div", { class: "muted small clamp" }, c.question)),
      h("td", { "data-label": col.kind }, kindLabel(c.kind), h("div", {}, urgencyBadge(c.urgency))),
      h("td", { "data-label": col.who }, showRequester ? store.institutionName(c.requester_institution_id) : whoLine(c)),
      h("td", { "data-label": col.time }, c.slot ? fmtSlot(c.slot) : h("span", { class: "muted" }, t("consultations.not_scheduled")),
        c.status === "requested" ? h("div", { class: "muted small" }, t("consultations.accept_by", { time: fmtDateTime(c.deadline), relative: relative(c.deadline) })) : null),
      h("td", { "data-label": col.status }, statusBadge(c.status),
        h("div", { class: "muted small", title: fmtDateTime(c.updated_at) }, t("consultations.updated", { relative: relative(c.updated_at) }))),
      h("td", { "data-label": col.report }, reportLabel(c.report_status)),
      actions ? h("td", { class: "row-actions" }, actions(c)) : null)))));
}
