// Small pieces every referral screen shows the same way: the status chip, the green-channel
// badge, the direction, "from -> to", and one referral as a card in a list.

import { h } from "../dom.js";
import { fmtDateTime, patientLine, specialtyLabel, term } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { clockBadge } from "./referral-clock.js";

export const GREEN_CHANNELS = ["stroke", "chest_pain", "trauma", "maternal", "neonatal"];
export const OPEN_STATES = ["requested", "accepted", "in_transit", "arrived"];

export function referralStatus(status) {
  return h("span", { class: `badge ref-status ref-status-${status}`, dataset: { status } }, term("referral_status", status));
}

/** The red green-channel badge ("Green channel · Stroke"). */
export function greenBadge(channel) {
  if (!channel) return null;
  return h("span", { class: "badge green-badge", dataset: { channel } },
    h("span", { class: "green-dot", "aria-hidden": "true" }),
    t("referrals.green_channel_kind", { kind: term("green_channel", channel) }));
}

export function directionBadge(direction) {
  return h("span", { class: `badge ref-dir ref-dir-${direction}` },
    h("span", { "aria-hidden": "true" }, direction === "up" ? "↑ " : "↓ "), term("direction", direction));
}

/** A department's name in the reader's language: its specialty's term where it has one. */
export function departmentName(d) {
  return d && d.specialty ? specialtyLabel(d.specialty) : (d ? d.name : "");
}

/** The referral's receiving department, named as departmentName() does. */
export function referralDepartment(r) {
  const inst = store.institutions.get(r.to_institution_id);
  const d = inst && (inst.departments || []).find((x) => x.id === r.department);
  return d ? departmentName(d) : r.department_name;
}

/** "Shalang Town Central Health Centre → Dianbai District People's Hospital · Neurology" */
export function route(r) {
  return h("span", { class: "ref-route" },
    h("span", {}, store.institutionName(r.from_institution_id)),
    h("span", { class: "ref-arrow", "aria-label": t("referrals.to") }, " → "),
    h("span", {}, store.institutionName(r.to_institution_id)),
    r.department ? h("span", { class: "muted" }, ` · ${referralDepartment(r)}`) : null);
}

/** One referral in the inbox: what it is, where it goes, how long it has been waiting. */
export function referralCard(r) {
  const href = `#/referrals/${r.id}`;
  return h("article", {
    class: ["ref-card", r.green_channel && "ref-card-green", OPEN_STATES.includes(r.status) ? "ref-open" : "ref-closed"],
    dataset: { id: r.id, status: r.status, channel: r.green_channel || "" },
  },
  h("div", { class: "ref-card-head" },
    h("div", { class: "ref-chips" }, greenBadge(r.green_channel), directionBadge(r.direction), referralStatus(r.status)),
    clockBadge(r)),
  h("h3", { class: "ref-card-title" }, h("a", { href }, patientLine(r.patient)),
    h("span", { class: "muted small" }, ` #${r.id}`)),
  h("p", { class: "ref-card-route" }, route(r)),
  h("p", { class: "muted small clamp ref-reason" }, r.reason),
  h("p", { class: "muted small" }, t("referrals.requested_by", { name: r.requester_name, time: fmtDateTime(r.times.requested_at) })));
}
