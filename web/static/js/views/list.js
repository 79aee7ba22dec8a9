// The consultation table used by the list and the queue.

import { h } from "../dom.js";
import { fmtDateTime, fmtSlot, patientLine, relative, specialtyLabel } from "../format.js";
import { store } from "../store.js";
import { kindLabel, statusBadge, urgencyBadge } from "../ui/components.js";

const REPORT = { none: "—", draft: "Draft 草稿", signed: "Signed 已签署" };

export function whoLine(c) {
  if (c.expert_id) {
    const expert = store.expertsById.get(c.expert_id);
    const name = store.personName(c.expert_id, c);
    return expert ? `${name} · ${expert.institution_name}` : name;
  }
  const bits = ["Queue 队列"];
  if (c.specialty) bits.push(specialtyLabel(c.specialty));
  if (c.target_institution_id) bits.push(store.institutionName(c.target_institution_id));
  return bits.join(" · ");
}

export function consultationTable(rows, { caption, actions, showRequester = false } = {}) {
  return h("div", { class: "table-wrap" }, h("table", { class: "table consultations" },
    caption ? h("caption", { class: "sr-only" }, caption) : null,
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "#"),
      h("th", { scope: "col" }, "Patient 患者"),
      h("th", { scope: "col" }, "Kind · urgency"),
      h("th", { scope: "col" }, showRequester ? "From 申请机构" : "Expert 专家"),
      h("th", { scope: "col" }, "Time 时间"),
      h("th", { scope: "col" }, "Status 状态"),
      h("th", { scope: "col" }, "Report 报告"),
      actions ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")) : null)),
    h("tbody", {}, rows.map((c) => h("tr", { dataset: { id: c.id, status: c.status }, class: `urgency-row-${c.urgency}` },
      h("td", { "data-label": "#" }, h("a", { href: `#/consultations/${c.id}`, class: "id-link" }, `#${c.id}`)),
      h("td", { "data-label": "Patient" },
        h("a", { href: `#/consultations/${c.id}`, class: "strong" }, patientLine(c.patient)),
        h("div", { class: "muted small clamp" }, c.question)),
      h("td", { "data-label": "Kind" }, kindLabel(c.kind), h("div", {}, urgencyBadge(c.urgency))),
      h("td", { "data-label": showRequester ? "From" : "Expert" }, showRequester ? store.institutionName(c.requester_institution_id) : whoLine(c)),
      h("td", { "data-label": "Time" }, c.slot ? fmtSlot(c.slot) : h("span", { class: "muted" }, "Not scheduled 未排期"),
        c.status === "requested" ? h("div", { class: "muted small" }, `Accept by ${fmtDateTime(c.deadline)} (${relative(c.deadline)})`) : null),
      h("td", { "data-label": "Status" }, statusBadge(c.status),
        h("div", { class: "muted small", title: fmtDateTime(c.updated_at) }, `updated ${relative(c.updated_at)}`)),
      h("td", { "data-label": "Report" }, REPORT[c.report_status] || c.report_status),
      actions ? h("td", { class: "row-actions" }, actions(c)) : null)))));
}
