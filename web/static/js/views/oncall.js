// The on-call roster of a receiving institution: per department a week of shifts (who is on call
// when), kept by coordinators (add, remove, set the department head); clinical staff of the
// institution see it read-only. A green-channel referral alerts whoever is on call here.

import { api, request } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { TZ_OFFSET, dayKey, fmtDate, fmtTime, fromLocalInput } from "../format.js";
import { departmentName } from "../features/referral-ui.js";
import { t } from "../i18n.js";
import { isManager, store } from "../store.js";
import { busy, emptyState, errorBox, loading, pageHeader, toast } from "../ui/components.js";
import { confirmDialog, formDialog } from "../ui/dialog.js";
import { keeps, permissions } from "./admin-perms.js";

const DAY = 86400000;

/** Monday 00:00 (Shanghai) of the week holding the day "YYYY-MM-DD" (today if absent). */
function weekStart(key) {
  const day = new Date(`${key || dayKey(new Date())}T00:00:00${TZ_OFFSET}`);
  const weekday = (new Date(day.getTime() + 8 * 3600000).getUTCDay() + 6) % 7; // 0 = Monday
  return new Date(day.getTime() - weekday * DAY);
}

/** The institutions whose rosters this user may see: a coordinator's alliances' members with
 * departments; anyone else their own. */
function rosterInstitutions(user) {
  if (!isManager(user)) return [store.institutions.get(user.institution_id)].filter(Boolean);
  const ids = new Set();
  for (const a of user.role === "admin" ? store.alliances : store.myAlliances()) a.member_ids.forEach((m) => ids.add(m));
  if (user.role === "admin") for (const i of store.institutions.values()) ids.add(i.id);
  return [...ids].map((id) => store.institutions.get(id)).filter((i) => i && (i.departments || []).length)
    .sort((a, b) => store.institutionName(a.id).localeCompare(store.institutionName(b.id)));
}

function shiftDialog(dept, people, day) {
  const who = select({ name: "user_id", required: true }, [["", t("oncall.choose_person")], ...people.map((p) => [p.id, p.name])]);
  const start = h("input", { type: "datetime-local", name: "start", required: true, value: `${dayKey(day)}T08:00` });
  const end = h("input", { type: "datetime-local", name: "end", required: true, value: `${dayKey(day)}T20:00` });
  return formDialog({
    title: t("oncall.add_title", { department: departmentName(dept) }),
    submitLabel: t("oncall.add_submit"),
    body: h("div", { class: "form-grid" }, field(t("oncall.person"), who, { wide: true }),
      field(t("oncall.start"), start), field(t("oncall.end"), end)),
    onSubmit: () => api.post("/api/on-call", { department_id: dept.id, user_id: Number(who.value), start: fromLocalInput(start.value), end: fromLocalInput(end.value) }),
  });
}

// Heads named in this session (the institution list does not carry them): department id -> head.
const heads = new Map();

function headForm(dept, people, reload) {
  const known = heads.get(dept.id) || (dept.head_id ? { head_id: dept.head_id } : null);
  const who = select({ name: `head_${dept.id}`, "aria-label": t("oncall.head_for", { department: departmentName(dept) }) },
    [["", t("oncall.head_none")], ...people.map((p) => [p.id, p.name])], known ? known.head_id || "" : "");
  const save = h("button", { type: "submit", class: "btn btn-sm" }, t("oncall.head_save"));
  return h("form", { class: "inline-form oncall-head", onsubmit: (ev) => {
    ev.preventDefault();
    busy(save, async () => {
      heads.set(dept.id, await api.put(`/api/departments/${dept.id}/head`, { user_id: who.value ? Number(who.value) : null }));
      toast(t("oncall.head_saved", { department: departmentName(dept) }));
      reload();
    });
  } }, field(t("oncall.head"), who), save);
}

function weekGrid(dept, shifts, days, { canEdit, people, reload }) {
  const remove = (s) => async (ev) => busy(ev.currentTarget, async () => {
    const ok = await confirmDialog({ title: t("oncall.remove_title"), danger: true, submitLabel: t("oncall.remove_submit"),
      message: t("oncall.remove_message", { name: s.user_name, time: `${fmtDate(s.start)} ${fmtTime(s.start)}–${fmtTime(s.end)}` }),
      onSubmit: async () => { await request("DELETE", `/api/on-call/${s.id}`); return true; } });
    if (ok !== null) { toast(t("oncall.removed")); reload(); }
  });
  return h("div", { class: "oncall-week", role: "list" }, days.map((day) => {
    const key = dayKey(day);
    const mine = shifts.filter((s) => dayKey(s.start) === key).sort((a, b) => new Date(a.start) - new Date(b.start));
    return h("div", { class: ["oncall-day", key === dayKey(new Date()) && "oncall-today"], role: "listitem", dataset: { day: key } },
      h("h4", { class: "oncall-day-name" }, fmtDate(day)),
      mine.length ? h("ul", { class: "oncall-shifts" }, mine.map((s) => h("li", { class: ["oncall-shift", s.now && "oncall-now"], dataset: { shift: s.id, user: s.user_id } },
        h("span", { class: "oncall-who" }, s.user_name),
        h("span", { class: "oncall-time" }, `${fmtTime(s.start)}–${fmtTime(s.end)}`, dayKey(s.end) !== key ? h("sup", {}, t("oncall.next_day")) : null),
        s.now ? h("span", { class: "badge oncall-now-badge" }, t("oncall.now")) : null,
        canEdit ? h("button", { type: "button", class: "btn btn-sm btn-ghost oncall-remove", "aria-label": t("oncall.remove_for", { name: s.user_name }), onclick: remove(s) }, "×") : null)))
        : h("p", { class: "muted small" }, t("oncall.nobody")),
      canEdit ? h("button", { type: "button", class: "btn btn-sm oncall-add", onclick: (ev) => busy(ev.currentTarget, async () => {
        if (await shiftDialog(dept, people, day)) { toast(t("oncall.added")); reload(); }
      }) }, t("oncall.add")) : null);
  }));
}

export async function render({ root, query, user, isCurrent }) {
  const institutions = rosterInstitutions(user);
  if (!institutions.length) {
    mount(root, pageHeader(t("oncall.title")), emptyState(t("oncall.no_institution")));
    return;
  }
  const inst = institutions.find((i) => String(i.id) === String(query.institution)) || institutions[0];
  const start = weekStart(query.week);
  const days = Array.from({ length: 7 }, (_, i) => new Date(start.getTime() + i * DAY));
  // Only the rosters the server lets this user change are offered for changing.
  const canEdit = isManager(user) && keeps(await permissions(), inst.id);
  const link = (q) => `#/on-call?${new URLSearchParams({ institution: inst.id, week: dayKey(start), ...q })}`;
  const instSel = select({ name: "institution" }, institutions.map((i) => [i.id, store.institutionName(i.id)]), inst.id);
  instSel.addEventListener("change", () => { window.location.hash = link({ institution: instSel.value }); });
  const body = h("div", { class: "oncall-body" }, loading());

  async function load() {
    let shifts;
    let experts;
    try {
      [shifts, experts] = await Promise.all([
        api.get("/api/on-call", { institution_id: inst.id, from: new Date(start.getTime() - DAY).toISOString(), to: new Date(start.getTime() + 7 * DAY).toISOString() }),
        canEdit ? api.get("/api/experts", { institution_id: inst.id }) : Promise.resolve([]),
      ]);
    } catch (err) {
      if (isCurrent()) mount(body, errorBox(err));
      return;
    }
    if (!isCurrent()) return;
    const people = new Map(experts.map((e) => [e.id, { id: e.id, name: e.display_name }]));
    for (const s of shifts) if (!people.has(s.user_id)) people.set(s.user_id, { id: s.user_id, name: s.user_name });
    const list = [...people.values()].sort((a, b) => a.name.localeCompare(b.name));
    mount(body, inst.departments.map((d) => {
      const mine = shifts.filter((s) => s.department_id === d.id);
      const onNow = mine.filter((s) => s.now);
      return h("section", { class: "panel oncall-dept", dataset: { department: d.id } },
        h("div", { class: "oncall-dept-head" },
          h("h2", {}, departmentName(d)),
          h("p", { class: ["oncall-now-line", !onNow.length && "warn-text"] },
            onNow.length ? t("oncall.on_call_now", { names: onNow.map((s) => s.user_name).join(", ") }) : t("oncall.nobody_now"))),
        canEdit ? headForm(d, list, load) : null,
        weekGrid(d, mine, days, { canEdit, people: list, reload: load }));
    }));
  }

  mount(root,
    pageHeader(t("oncall.title"),
      h("a", { class: "btn", href: link({ week: dayKey(new Date(start.getTime() - 7 * DAY)) }) }, t("oncall.prev_week")),
      h("a", { class: "btn", href: link({ week: dayKey(new Date()) }) }, t("oncall.this_week")),
      h("a", { class: "btn", href: link({ week: dayKey(new Date(start.getTime() + 7 * DAY)) }) }, t("oncall.next_week"))),
    h("div", { class: "toolbar" },
      h("p", { class: "oncall-range" }, t("oncall.week_of", { from: fmtDate(days[0]), to: fmtDate(days[6]) })),
      institutions.length > 1 ? h("form", { class: "filters inline", onsubmit: (e) => e.preventDefault() }, field(t("oncall.institution"), instSel)) : null),
    canEdit ? null : h("p", { class: "muted small" }, t("oncall.read_only")),
    body);
  await load();
}
