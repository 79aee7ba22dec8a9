// Institutions as a tree by level and parent (province over city over county over township over
// village), with create and edit for those who may, and each institution's departments.

import { api, request } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { specialtyLabel, term } from "../format.js";
import { locale, t } from "../i18n.js";
import { store } from "../store.js";
import { busy, emptyState, errorBox, loading, pageHeader, toast } from "../ui/components.js";
import { confirmDialog, formDialog } from "../ui/dialog.js";
import { keeps } from "./admin-perms.js";

export const LEVELS = ["province", "city", "county", "township", "village"];
const rank = (level) => LEVELS.indexOf(level);

/** "Local name (Name)" in Chinese, "Name" in English. */
export function instLabel(i) {
  if (!i) return "";
  return locale() === "zh-CN" && i.local_name ? `${i.local_name}` : i.name;
}

function byLevelThenName(a, b) {
  return rank(a.level) - rank(b.level) || instLabel(a).localeCompare(instLabel(b));
}

/** The ids of an institution and every branch below it. */
function subtree(id, all) {
  const out = new Set([id]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const i of all) if (i.parent_id !== null && out.has(i.parent_id) && !out.has(i.id)) { out.add(i.id); grew = true; }
  }
  return out;
}

function institutionDialog(perms, existing) {
  const all = [...store.institutions.values()];
  const name = h("input", { name: "name", required: true, maxlength: 200, value: existing ? existing.name : "" });
  const local = h("input", { name: "local_name", maxlength: 200, value: existing ? existing.local_name || "" : "", lang: "zh-CN" });
  const level = select({ name: "level", required: true }, LEVELS.map((l) => [l, term("level", l)]), existing ? existing.level : "township");
  const parent = select({ name: "parent_id" }, [], "");
  const excluded = existing ? subtree(existing.id, all) : new Set();
  const fillParents = () => {
    const keep = parent.value || (existing && existing.parent_id ? String(existing.parent_id) : "");
    const options = all.filter((i) => !excluded.has(i.id) && rank(i.level) < rank(level.value) && keeps(perms, i.id)).sort(byLevelThenName);
    mount(parent, h("option", { value: "" }, t("directory.inst_no_parent")),
      options.map((i) => h("option", { value: String(i.id), selected: String(i.id) === keep }, `${instLabel(i)} · ${term("level", i.level)}`)));
  };
  level.addEventListener("change", fillParents);
  fillParents();
  return formDialog({
    title: existing ? t("directory.inst_edit_title", { name: instLabel(existing) }) : t("directory.inst_new_title"),
    submitLabel: existing ? t("directory.save") : t("directory.inst_create"),
    body: h("div", { class: "form-grid" },
      field(t("directory.inst_name"), name, { wide: true, hint: t("directory.inst_name_hint") }),
      field(t("directory.inst_local_name"), local, { wide: true }),
      field(t("directory.inst_level"), level),
      field(t("directory.inst_parent"), parent, { hint: t("directory.inst_parent_hint") })),
    onSubmit: () => {
      const body = { name: name.value.trim(), level: level.value, parent_id: parent.value ? Number(parent.value) : null,
        local_name: local.value.trim() || null };
      return existing ? request("PATCH", `/api/institutions/${existing.id}`, { body }) : api.post("/api/institutions", body);
    },
  });
}

function departmentDialog(inst, dept) {
  const name = h("input", { name: "department_name", required: true, maxlength: 120, value: dept ? dept.name : "" });
  const specialties = store.assignableSpecialties();
  if (dept && dept.specialty && !specialties.includes(dept.specialty)) specialties.push(dept.specialty);
  const specialty = select({ name: "specialty" }, [["", t("directory.dept_no_specialty")], ...specialties.map((s) => [s, specialtyLabel(s)])], dept ? dept.specialty || "" : "");
  return formDialog({
    title: dept ? t("directory.dept_edit_title", { name: dept.name }) : t("directory.dept_new_title", { institution: instLabel(inst) }),
    submitLabel: dept ? t("directory.save") : t("directory.dept_create"),
    body: h("div", { class: "form-grid" }, field(t("directory.dept_name"), name, { wide: true }), field(t("directory.dept_specialty"), specialty, { wide: true })),
    onSubmit: () => {
      const body = { name: name.value.trim(), specialty: specialty.value || null };
      return dept ? request("PATCH", `/api/departments/${dept.id}`, { body }) : api.post(`/api/institutions/${inst.id}/departments`, body);
    },
  });
}

async function departmentsPanel(el, inst, perms, reload) {
  mount(el, loading());
  const depts = await api.get(`/api/institutions/${inst.id}/departments`);
  const canEdit = keeps(perms, inst.id);
  const parent = inst.parent_id ? store.institutions.get(inst.parent_id) : null;
  const refresh = async (msg) => { toast(msg); await reload(inst.id); };
  mount(el,
    h("h2", { id: "inst-detail-title" }, instLabel(inst)),
    h("p", { class: "muted small" }, [term("level", inst.level), parent ? t("directory.inst_under", { parent: instLabel(parent) }) : t("directory.inst_top")].join(" · ")),
    locale() === "zh-CN" ? h("p", { class: "muted small", lang: "en" }, inst.name) : (inst.local_name ? h("p", { class: "muted small", lang: "zh-CN" }, inst.local_name) : null),
    canEdit ? h("div", { class: "row-gap" },
      h("button", { type: "button", class: "btn btn-sm", dataset: { action: "edit-institution" }, onclick: (ev) => busy(ev.currentTarget, async () => {
        if (await institutionDialog(perms, inst)) await refresh(t("directory.inst_saved"));
      }) }, t("directory.inst_edit")),
      h("button", { type: "button", class: "btn btn-sm", dataset: { action: "add-department" }, onclick: (ev) => busy(ev.currentTarget, async () => {
        if (await departmentDialog(inst, null)) await refresh(t("directory.dept_created"));
      }) }, t("directory.dept_add"))) : h("p", { class: "muted small" }, t("directory.read_only")),
    h("h3", {}, t("directory.departments")),
    depts.length ? h("table", { class: "table admin-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("directory.dept_name")), h("th", { scope: "col" }, t("directory.dept_specialty")), canEdit ? h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("directory.actions"))) : null)),
      h("tbody", {}, depts.map((d) => h("tr", { dataset: { department: d.id } },
        h("td", { dataset: { label: t("directory.dept_name") } }, d.name),
        h("td", { dataset: { label: t("directory.dept_specialty") } }, d.specialty ? specialtyLabel(d.specialty) : "—"),
        canEdit ? h("td", { class: "actions" },
          h("button", { type: "button", class: "btn btn-sm btn-ghost", onclick: (ev) => busy(ev.currentTarget, async () => {
            if (await departmentDialog(inst, d)) await refresh(t("directory.dept_saved"));
          }) }, t("directory.edit")),
          d.in_use ? h("span", { class: "muted small", title: t("directory.dept_in_use_hint") }, t("directory.dept_in_use"))
            : h("button", { type: "button", class: "btn btn-sm btn-ghost", onclick: (ev) => busy(ev.currentTarget, async () => {
              const ok = await confirmDialog({ title: t("directory.dept_remove_title"), danger: true, submitLabel: t("directory.remove"),
                message: t("directory.dept_remove_message", { name: d.name }),
                onSubmit: async () => { await request("DELETE", `/api/departments/${d.id}`); return true; } });
              if (ok) await refresh(t("directory.dept_removed"));
            }) }, t("directory.remove"))) : null)))) : emptyState(t("directory.dept_none")));
}

function tree(all, selected, onPick) {
  const ids = new Set(all.map((i) => i.id));
  const children = new Map();
  for (const i of all) {
    const key = i.parent_id !== null && ids.has(i.parent_id) ? i.parent_id : null;
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(i);
  }
  const branch = (parentId) => {
    const list = (children.get(parentId) || []).sort(byLevelThenName);
    if (!list.length) return null;
    return h("ul", { class: "inst-tree", role: parentId === null ? "tree" : "group", "aria-label": parentId === null ? t("directory.inst_tree") : null },
      list.map((i) => h("li", { role: "treeitem", "aria-selected": String(i.id === selected), dataset: { institution: i.id } },
        h("button", { type: "button", class: ["inst-node", i.id === selected && "selected"], onclick: () => onPick(i.id) },
          h("span", { class: `badge level-badge level-${i.level}` }, term("level", i.level)),
          h("span", { class: "inst-node-name" }, instLabel(i)),
          h("span", { class: "muted small" }, t("directory.dept_count", { n: (i.departments || []).length }))),
        branch(i.id))));
  };
  return branch(null);
}

export async function render({ root, query, perms, navigate }) {
  const side = h("section", { class: "panel admin-detail", "aria-labelledby": "inst-detail-title" });
  const treeBox = h("div", { class: "panel admin-tree" });
  const show = async (selectedId) => {
    await store.load();
    const all = [...store.institutions.values()];
    const selected = store.institutions.get(Number(selectedId)) || null;
    const pick = (id) => navigate(`#/admin/institutions?id=${id}`);
    mount(treeBox, all.length ? tree(all, selected && selected.id, pick) : emptyState(t("directory.inst_none")));
    if (selected) await departmentsPanel(side, selected, perms, show).catch((err) => mount(side, errorBox(err)));
    else mount(side, h("h2", { id: "inst-detail-title" }, t("directory.inst_pick_title")), h("p", { class: "muted" }, t("directory.inst_pick_hint")));
  };
  const create = perms.create_institutions ? h("button", { type: "button", class: "btn btn-primary", id: "new-institution", onclick: (ev) => busy(ev.currentTarget, async () => {
    const made = await institutionDialog(perms, null);
    if (made) { toast(t("directory.inst_created", { name: instLabel(made) })); navigate(`#/admin/institutions?id=${made.id}`); }
  }) }, t("directory.inst_new")) : null;
  mount(root, pageHeader(t("directory.inst_title"), create),
    h("p", { class: "muted small" }, perms.all_institutions ? t("directory.inst_intro_admin") : t("directory.inst_intro_coordinator")),
    h("div", { class: "admin-grid" }, treeBox, side));
  await show(query.id);
}
