// The availability editor: an expert's weekly clinic hours and exceptions (leave, on-site days
// at a branch, extra windows). Saving regenerates free slots; booked ones are kept.

import { ApiError, api } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { fmtDate, fromLocalInput, term, toLocalInput } from "../format.js";
import { has, t } from "../i18n.js";
import { isManager, isSpecialist, store } from "../store.js";
import { busy, emptyState, errorBox, errorSlot, loading, pageHeader, toast } from "../ui/components.js";
import { institutionLabel } from "./experts.js";
import { byDay } from "./slots.js";
import { keeps, permissions } from "./admin-perms.js";

const EXCEPTION_KINDS = ["leave", "onsite", "extra"];
const TIMEZONES = ["Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau", "UTC"];
const SLOT_LENGTHS = [10, 15, 20, 30, 45, 60, 90, 120];
const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6];
const minutesOptions = () => SLOT_LENGTHS.map((m) => [m, t("availability.minutes", { n: m })]);

function ruleRow(rule, n, onRemove) {
  const tr = h("tr", { class: "rule-row" });
  const weekday = select({ name: "weekday", "aria-label": t("availability.rule_weekday", { n }) }, WEEKDAYS.map((i) => [i, term("weekday", i)]), rule.weekday);
  const start = h("input", { type: "time", name: "start", value: rule.start, required: true, "aria-label": t("availability.rule_from", { n }) });
  const end = h("input", { type: "time", name: "end", value: rule.end, required: true, "aria-label": t("availability.rule_until", { n }) });
  const minutes = select({ name: "slot_minutes", "aria-label": t("availability.rule_length", { n }) }, minutesOptions(), rule.slot_minutes || 30);
  const remove = h("button", { type: "button", class: "btn btn-sm btn-ghost", "aria-label": t("availability.rule_remove", { n }), onclick: () => { tr.remove(); onRemove(); } }, t("availability.remove"));
  const cell = (key, control) => h("td", { dataset: { label: t(`availability.${key}`) } }, control);
  mount(tr, cell("weekday", weekday), cell("from", start), cell("until", end), cell("slot_length", minutes), h("td", {}, remove));
  tr.read = () => ({ weekday: Number(weekday.value), start: start.value.slice(0, 5), end: end.value.slice(0, 5), slot_minutes: Number(minutes.value) });
  return tr;
}

function exceptionRow(x, n, onRemove) {
  const kind = select({ name: "kind" }, EXCEPTION_KINDS.map((k) => [k, t(`availability.kind_${k}`)]), x.kind);
  const start = h("input", { type: "datetime-local", name: "start", value: x.start ? toLocalInput(x.start) : "", required: true });
  const end = h("input", { type: "datetime-local", name: "end", value: x.end ? toLocalInput(x.end) : "", required: true });
  const inst = select({ name: "institution_id" }, [["", "—"], ...[...store.institutions.values()].map((i) => [i.id, institutionLabel(i)])], x.institution_id || "");
  const minutes = select({ name: "slot_minutes" }, [["", "—"], ...minutesOptions()], x.slot_minutes || "");
  const note = h("input", { name: "note", maxlength: 200, value: x.note || "" });
  const sync = () => {
    inst.disabled = kind.value !== "onsite";
    minutes.disabled = kind.value !== "extra";
    minutes.required = kind.value === "extra";
  };
  kind.addEventListener("change", sync);
  sync();
  const row = h("fieldset", { class: "exception-row" },
    h("legend", { class: "sr-only" }, t("availability.exception_n", { n })),
    field(t("availability.kind"), kind), field(t("availability.from"), start), field(t("availability.until"), end),
    field(t("availability.at_institution"), inst), field(t("availability.slot_length"), minutes), field(t("availability.note"), note),
    h("button", { type: "button", class: "btn btn-sm btn-ghost", "aria-label": t("availability.exception_remove", { n }), onclick: () => { row.remove(); onRemove(); } }, t("availability.remove")));
  row.read = () => {
    if (!start.value || !end.value) throw new ApiError(0, "availability_invalid", t("availability.need_both", { n }));
    const out = { kind: kind.value, start: fromLocalInput(start.value), end: fromLocalInput(end.value) };
    if (kind.value === "onsite" && inst.value) out.institution_id = Number(inst.value);
    if (kind.value === "extra") out.slot_minutes = Number(minutes.value);
    if (note.value.trim()) out.note = note.value.trim();
    return out;
  };
  return row;
}

async function preview(el, expertId) {
  mount(el, loading(t("availability.preview_loading")));
  const now = new Date();
  const slots = await api.get(`/api/experts/${expertId}/slots`, { from: now.toISOString(), to: new Date(now.getTime() + 14 * 86400000).toISOString() });
  const days = byDay(slots);
  mount(el, days.length ? h("table", { class: "table preview" },
    h("caption", {}, t("availability.preview_caption")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("availability.day")), h("th", { scope: "col" }, t("availability.free")), h("th", { scope: "col" }, t("availability.booked")), h("th", { scope: "col" }, h("abbr", { title: t("availability.off_title") }, t("availability.off"))))),
    h("tbody", {}, days.map(([key, list]) => h("tr", { dataset: { day: key } },
      h("th", { scope: "row" }, fmtDate(list[0].start)),
      ["free", "booked", "blocked"].map((st) => h("td", { class: `count-${st}` }, String(list.filter((s) => s.status === st).length)))))))
    : emptyState(t("availability.preview_none"), null));
}

export async function render({ root, params, user, navigate }) {
  let expertId = params.id ? Number(params.id) : null;
  if (!expertId && isSpecialist(user)) expertId = user.id;
  const manager = isManager(user);
  // A manager is offered the experts whose availability they keep (a coordinator: their
  // alliances' experts), never one the server would refuse at save time.
  const perms = manager ? await permissions() : null;
  const kept = store.experts.filter((e) => !manager || keeps(perms, e.institution_id));
  const picker = manager ? select({ name: "expert", id: "expert-picker" }, [["", t("availability.choose_expert")],
    ...kept.map((e) => ({ value: e.id, label: `${e.display_name} — ${institutionLabel(store.institutions.get(e.institution_id), e.institution_name)}`, group: e.in_my_alliance ? t("availability.group_my_alliance") : t("availability.group_other") }))], expertId || "") : null;
  if (picker) picker.addEventListener("change", () => navigate(picker.value ? `#/availability/${picker.value}` : "#/availability"));
  const header = pageHeader(t("availability.title"), null);
  const pickerBox = picker ? h("div", { class: "filters" }, field(t("availability.expert"), picker)) : null;
  if (!expertId) {
    mount(root, header, pickerBox, emptyState(t("availability.choose_hint"), null));
    return;
  }
  if (!manager && expertId !== user.id) {
    mount(root, header, errorBox(new ApiError(403, "not_your_availability", t("availability.own_only"))));
    return;
  }
  mount(root, header, pickerBox, loading());
  const av = await api.get(`/api/experts/${expertId}/availability`);
  if (!av.can_edit) {
    mount(root, header, pickerBox, errorBox(new ApiError(403, "not_your_availability", t("availability.not_kept"))));
    return;
  }
  const expert = store.expertsById.get(expertId);
  const errors = errorSlot();

  const rulesBody = h("tbody", {});
  const rulesEmpty = h("p", { class: "muted" }, t("availability.no_weekly"));
  const syncEmpty = () => { rulesEmpty.hidden = rulesBody.children.length > 0; };
  const addRule = (r) => { rulesBody.append(ruleRow(r, rulesBody.children.length + 1, syncEmpty)); syncEmpty(); };
  [...av.weekly].sort((a, b) => a.weekday - b.weekday || a.start.localeCompare(b.start)).forEach(addRule);
  syncEmpty();

  const excList = h("div", { class: "exception-list" });
  const excEmpty = h("p", { class: "muted" }, t("availability.no_exceptions"));
  const syncExc = () => { excEmpty.hidden = excList.children.length > 0; };
  const addException = (x) => { excList.append(exceptionRow(x, excList.children.length + 1, syncExc)); syncExc(); };
  av.exceptions.forEach(addException);
  syncExc();

  // A zone set through the API but not offered here stays as it is (saving must not change it).
  const zones = TIMEZONES.includes(av.timezone) ? TIMEZONES : [av.timezone, ...TIMEZONES];
  const zoneLabel = (zone) => (has(`availability.tz_${zone.replace("/", "_")}`) ? t(`availability.tz_${zone.replace("/", "_")}`) : zone);
  const tz = select({ name: "timezone" }, zones.map((zone) => [zone, zoneLabel(zone)]), av.timezone);
  const previewEl = h("div", { class: "preview-box" });
  const save = h("button", { type: "submit", class: "btn btn-primary" }, t("availability.save"));
  const form = h("form", { class: "availability-form", novalidate: true },
    h("fieldset", { class: "panel" }, h("legend", {}, t("availability.weekly")),
      h("div", { class: "table-wrap" }, h("table", { class: "table rules" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("availability.weekday")), h("th", { scope: "col" }, t("availability.from")), h("th", { scope: "col" }, t("availability.until")), h("th", { scope: "col" }, t("availability.slot_length")), h("th", { scope: "col" }, h("span", { class: "sr-only" }, t("availability.remove"))))),
        rulesBody)),
      rulesEmpty,
      h("div", { class: "row-gap" },
        h("button", { type: "button", class: "btn", onclick: () => addRule({ weekday: 0, start: "09:00", end: "12:00", slot_minutes: 30 }) }, t("availability.add_hours")),
        field(t("availability.timezone"), tz))),
    h("fieldset", { class: "panel" }, h("legend", {}, t("availability.exceptions")),
      h("p", { class: "muted small" }, t("availability.exceptions_hint")),
      excList, excEmpty,
      h("button", { type: "button", class: "btn", onclick: () => {
        const start = new Date(Date.now() + 86400000);
        start.setUTCMinutes(0, 0, 0);
        addException({ kind: "leave", start: start.toISOString(), end: new Date(start.getTime() + 8 * 3600000).toISOString() });
      } }, t("availability.add_exception"))),
    errors.el,
    h("div", { class: "form-actions" }, save));

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, async () => {
      const weekly = [...rulesBody.children].map((tr) => tr.read());
      for (const [i, r] of weekly.entries()) {
        if (!r.start || !r.end || r.end <= r.start) throw new ApiError(0, "availability_invalid", t("availability.end_after_start", { n: i + 1 }));
      }
      const exceptions = [...excList.children].map((row) => row.read());
      await api.put(`/api/experts/${expertId}/availability`, { timezone: tz.value, weekly, exceptions });
      toast(t("availability.saved"));
      await preview(previewEl, expertId);
    }, errors);
  });

  mount(root, header, pickerBox,
    h("p", { class: "lead" }, expert ? `${expert.display_name} · ${institutionLabel(store.institutions.get(expert.institution_id), expert.institution_name)}` : t("availability.expert_n", { id: expertId }),
      h("span", { class: "muted small" }, ` · ${t("availability.booked_kept")}`)),
    h("div", { class: "detail-grid" },
      h("div", { class: "detail-main" }, form),
      h("aside", { class: "detail-side" }, h("section", { class: "panel", "aria-labelledby": "pv-title" },
        h("h2", { id: "pv-title" }, t("availability.preview_title")), previewEl))));
  await preview(previewEl, expertId).catch((err) => mount(previewEl, errorBox(err)));
}
