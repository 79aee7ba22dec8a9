// Alliances: kind (tight / specialty), specialty, lead institution and members. Administrators
// create and edit them and pick members; coordinators see them.

import { api, request } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { specialtyLabel, term } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { busy, emptyState, pageHeader, toast } from "../ui/components.js";
import { formDialog } from "../ui/dialog.js";
import { LEVELS, instLabel } from "./admin-institutions.js";
import { forgetPermissions } from "./admin-perms.js";

const KINDS = ["tight", "specialty"];
const sortedInstitutions = () => [...store.institutions.values()].sort((a, b) =>
  LEVELS.indexOf(a.level) - LEVELS.indexOf(b.level) || instLabel(a).localeCompare(instLabel(b)));

function allianceDialog(existing) {
  const name = h("input", { name: "alliance_name", required: true, maxlength: 200, value: existing ? existing.name : "" });
  const kind = select({ name: "kind" }, KINDS.map((k) => [k, t(`directory.kind_${k}`)]), existing ? existing.kind : "tight");
  const specialty = select({ name: "alliance_specialty" }, [["", t("directory.dept_no_specialty")], ...store.assignableSpecialties().map((s) => [s, specialtyLabel(s)])], existing ? existing.specialty || "" : "");
  const lead = select({ name: "lead_institution_id", required: true }, [["", t("directory.all_choose_lead")],
    ...sortedInstitutions().map((i) => ({ value: i.id, label: instLabel(i), group: term("level", i.level) }))], existing ? existing.lead_institution_id : "");
  const sync = () => { specialty.required = kind.value === "specialty"; };
  kind.addEventListener("change", sync);
  sync();
  return formDialog({
    title: existing ? t("directory.all_edit_title", { name: existing.name }) : t("directory.all_new_title"),
    submitLabel: existing ? t("directory.save") : t("directory.all_create"),
    body: h("div", { class: "form-grid" },
      field(t("directory.all_name"), name, { wide: true }),
      field(t("directory.all_kind"), kind, { hint: t("directory.all_kind_hint") }),
      field(t("directory.all_specialty"), specialty),
      field(t("directory.all_lead"), lead, { wide: true, hint: t("directory.all_lead_hint") })),
    onSubmit: () => {
      const body = { name: name.value.trim(), kind: kind.value, specialty: specialty.value || null, lead_institution_id: Number(lead.value) || 0 };
      return existing ? request("PATCH", `/api/alliances/${existing.id}`, { body }) : api.post("/api/alliances", body);
    },
  });
}

function membersDialog(alliance) {
  const chosen = new Set(alliance.member_ids);
  const filter = h("input", { type: "search", name: "member_filter", placeholder: t("directory.all_filter"), "aria-label": t("directory.all_filter") });
  const list = h("div", { class: "member-list", role: "group", "aria-label": t("directory.all_members") });
  const count = h("p", { class: "muted small", "aria-live": "polite" });
  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    mount(list, LEVELS.map((level) => {
      const items = sortedInstitutions().filter((i) => i.level === level && (!q || `${i.name} ${i.local_name || ""}`.toLowerCase().includes(q)));
      if (!items.length) return null;
      return h("fieldset", { class: "member-group" }, h("legend", {}, term("level", level)),
        items.map((i) => {
          const lead = i.id === alliance.lead_institution_id;
          const box = h("input", { type: "checkbox", name: "member", value: String(i.id), checked: chosen.has(i.id) || lead, disabled: lead,
            onchange: (ev) => { if (ev.target.checked) chosen.add(i.id); else chosen.delete(i.id); count.textContent = t("directory.all_member_count", { n: chosen.size }); } });
          return h("label", { class: "check" }, box, instLabel(i), lead ? h("span", { class: "badge" }, t("directory.all_lead_badge")) : null);
        }));
    }));
    count.textContent = t("directory.all_member_count", { n: chosen.size });
  };
  filter.addEventListener("input", draw);
  draw();
  return formDialog({
    title: t("directory.all_members_title", { name: alliance.name }),
    submitLabel: t("directory.save"),
    body: [filter, count, list],
    onSubmit: () => request("PUT", `/api/alliances/${alliance.id}/members`, { body: { member_ids: [...new Set([...chosen, alliance.lead_institution_id])] } }),
  });
}

export async function render({ root, perms }) {
  const body = h("div", {});
  const draw = async () => {
    await store.load();
    const list = [...store.alliances].sort((a, b) => a.name.localeCompare(b.name));
    const done = async (msg) => { forgetPermissions(); toast(msg); await draw(); };
    mount(body, list.length ? h("div", { class: "alliance-list" }, list.map((a) => h("article", { class: "panel alliance-card", dataset: { alliance: a.id } },
      h("h2", {}, a.name),
      h("p", { class: "muted small" }, [t(`directory.kind_${a.kind}`), a.specialty ? specialtyLabel(a.specialty) : null].filter(Boolean).join(" · ")),
      h("p", {}, t("directory.all_lead_line", { name: instLabel(store.institutions.get(a.lead_institution_id)) })),
      h("details", { class: "alliance-members" }, h("summary", {}, t("directory.all_member_count", { n: a.member_ids.length })),
        h("ul", {}, a.member_ids.map((id) => store.institutions.get(id)).filter(Boolean).sort((x, y) => LEVELS.indexOf(x.level) - LEVELS.indexOf(y.level))
          .map((i) => h("li", {}, `${instLabel(i)} · ${term("level", i.level)}`)))),
      perms.manage_alliances ? h("div", { class: "row-gap" },
        h("button", { type: "button", class: "btn btn-sm", dataset: { action: "edit-alliance" }, onclick: (ev) => busy(ev.currentTarget, async () => {
          if (await allianceDialog(a)) await done(t("directory.all_saved"));
        }) }, t("directory.edit")),
        h("button", { type: "button", class: "btn btn-sm", dataset: { action: "members" }, onclick: (ev) => busy(ev.currentTarget, async () => {
          if (await membersDialog(a)) await done(t("directory.all_members_saved"));
        }) }, t("directory.all_members_edit"))) : null)))
      : emptyState(t("directory.all_none")));
  };
  const create = perms.manage_alliances ? h("button", { type: "button", class: "btn btn-primary", id: "new-alliance", onclick: (ev) => busy(ev.currentTarget, async () => {
    const made = await allianceDialog(null);
    if (made) { forgetPermissions(); toast(t("directory.all_created", { name: made.name })); await draw(); }
  }) }, t("directory.all_new")) : null;
  mount(root, pageHeader(t("directory.all_title"), create),
    perms.manage_alliances ? null : h("p", { class: "muted small" }, t("directory.all_read_only")), body);
  await draw();
}
