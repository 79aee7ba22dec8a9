// Follow-ups at the clinic a patient was referred down to: the due ones by due date,
// overdue ones first and marked, the outcome recorded in a dialog; and the completed ones.

import { api } from "../api.js";
import { h, mount, newId } from "../dom.js";
import { fmtDateTime, patientLine, relative } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";
import { outcomeDialog } from "../features/referral-followup.js";
import { onReferralNews } from "../features/referral-live.js";

const TABS = ["due", "completed"];

function card(f, reload) {
  const overdue = f.status === "due" && f.overdue;
  return h("article", { class: ["fu-card", overdue && "fu-card-overdue"], dataset: { id: f.id, status: f.status, overdue: String(Boolean(f.overdue)) } },
    h("div", { class: "fu-head" },
      h("h3", { class: "fu-patient" }, patientLine(f.patient)),
      overdue ? h("span", { class: "badge fu-overdue" }, t("followups.overdue")) : null),
    f.status === "due"
      ? h("p", { class: ["fu-due", overdue && "fu-due-late"] }, t("followups.due_at", { time: fmtDateTime(f.due_at) }), h("span", { class: "muted small" }, ` (${relative(f.due_at)})`))
      : h("p", { class: "fu-due" }, t("followups.completed_at", { time: fmtDateTime(f.completed_at), name: f.completed_by_name || "" })),
    f.plan ? h("p", { class: "prewrap small fu-plan" }, f.plan) : null,
    f.outcome ? h("p", { class: "tl-note" }, f.outcome) : null,
    h("p", { class: "muted small" },
      f.from_institution_id ? t("followups.referred_from", { institution: store.institutionName(f.from_institution_id) }) : null,
      f.assigned_to_name ? ` · ${t("followups.assigned_to", { name: f.assigned_to_name })}` : null),
    h("div", { class: "fu-actions" },
      f.status === "due" ? h("button", { type: "button", class: "btn btn-primary", onclick: async () => { if (await outcomeDialog(f)) reload(); } }, t("followups.record")) : null,
      f.referral_id ? h("a", { class: "btn", href: `#/referrals/${f.referral_id}` }, t("followups.open_referral")) : null,
      h("a", { class: "btn", href: `#/referrals/new?patient=${f.patient_id}&direction=up` }, t("followups.refer_up"))));
}

export async function render({ root, query, onCleanup, isCurrent }) {
  const tab = TABS.includes(query.tab) ? query.tab : "due";
  const counts = new Map();
  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": t("followups.tabs_label") });
  const drawTabs = () => mount(tabs, TABS.map((key) => h("a", {
    href: `#/follow-ups?tab=${key}`, role: "tab", id: `tab-${key}`, "aria-selected": String(key === tab), class: key === tab ? "active" : null,
  }, t(`followups.tab_${key}`), counts.has(key) ? h("span", { class: "count" }, counts.get(key)) : null)));
  drawTabs();
  const body = h("div", { class: "list-body" }, loading());

  async function load() {
    let due;
    let done;
    try {
      [due, done] = await Promise.all([api.get("/api/follow-ups"), api.get("/api/follow-ups", { status: "completed" })]);
    } catch (err) {
      if (isCurrent()) mount(body, errorBox(err));
      return;
    }
    if (!isCurrent()) return;
    due.sort((a, b) => new Date(a.due_at) - new Date(b.due_at));
    done.sort((a, b) => new Date(b.completed_at) - new Date(a.completed_at));
    counts.set("due", due.length);
    counts.set("completed", done.length);
    drawTabs();
    const rows = tab === "due" ? due : done;
    const late = rows.filter((f) => f.overdue && f.status === "due").length;
    mount(body, rows.length
      ? [late ? h("p", { class: "alert alert-warn", role: "status" }, t("followups.overdue_count", { n: late })) : null,
        h("div", { class: "fu-cards" }, rows.map((f) => card(f, load)))]
      : emptyState(t(`followups.empty_${tab}`)));
  }

  mount(root,
    pageHeader(t("followups.title"), h("button", { type: "button", class: "btn", onclick: load }, t("common.refresh"))),
    h("div", { class: "toolbar" }, tabs),
    h("div", { role: "tabpanel", "aria-labelledby": `tab-${tab}`, id: newId("panel") }, body));
  onReferralNews(() => { if (isCurrent() && !document.querySelector("dialog[open]")) load(); }, { onCleanup });
  await load();
}
