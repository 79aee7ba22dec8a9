// The availability editor: an expert's weekly clinic hours and exceptions (leave, on-site days
// at a branch 坐诊, extra windows). Saving regenerates free slots; booked ones are kept.

import { ApiError, api } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { WEEKDAYS, fmtDate, fromLocalInput, toLocalInput } from "../format.js";
import { isManager, isSpecialist, store } from "../store.js";
import { busy, emptyState, errorBox, errorSlot, loading, pageHeader, toast } from "../ui/components.js";
import { byDay } from "./slots.js";

const EXCEPTION_KINDS = { leave: "Leave 请假/停诊", onsite: "On-site at a branch 坐诊", extra: "Extra clinic hours 加诊" };
const TIMEZONES = ["Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau", "UTC"];
const SLOT_LENGTHS = [10, 15, 20, 30, 45, 60, 90, 120];

function ruleRow(rule, n, onRemove) {
  const tr = h("tr", { class: "rule-row" });
  const weekday = select({ name: "weekday", "aria-label": `Rule ${n}: weekday` }, WEEKDAYS.map(([en, zh], i) => [i, `${en} ${zh}`]), rule.weekday);
  const start = h("input", { type: "time", name: "start", value: rule.start, required: true, "aria-label": `Rule ${n}: from` });
  const end = h("input", { type: "time", name: "end", value: rule.end, required: true, "aria-label": `Rule ${n}: until` });
  const minutes = select({ name: "slot_minutes", "aria-label": `Rule ${n}: slot length` }, SLOT_LENGTHS.map((m) => [m, `${m} min`]), rule.slot_minutes || 30);
  const remove = h("button", { type: "button", class: "btn btn-sm btn-ghost", "aria-label": `Remove rule ${n}`, onclick: () => { tr.remove(); onRemove(); } }, "Remove 删除");
  mount(tr, h("td", {}, weekday), h("td", {}, start), h("td", {}, end), h("td", {}, minutes), h("td", {}, remove));
  tr.read = () => ({ weekday: Number(weekday.value), start: start.value.slice(0, 5), end: end.value.slice(0, 5), slot_minutes: Number(minutes.value) });
  return tr;
}

function exceptionRow(x, n, onRemove) {
  const kind = select({ name: "kind" }, Object.entries(EXCEPTION_KINDS), x.kind);
  const start = h("input", { type: "datetime-local", name: "start", value: x.start ? toLocalInput(x.start) : "", required: true });
  const end = h("input", { type: "datetime-local", name: "end", value: x.end ? toLocalInput(x.end) : "", required: true });
  const inst = select({ name: "institution_id" }, [["", "—"], ...[...store.institutions.values()].map((i) => [i.id, i.name])], x.institution_id || "");
  const minutes = select({ name: "slot_minutes" }, [["", "—"], ...SLOT_LENGTHS.map((m) => [m, `${m} min`])], x.slot_minutes || "");
  const note = h("input", { name: "note", maxlength: 200, value: x.note || "" });
  const sync = () => {
    inst.disabled = kind.value !== "onsite";
    minutes.disabled = kind.value !== "extra";
    minutes.required = kind.value === "extra";
  };
  kind.addEventListener("change", sync);
  sync();
  const row = h("fieldset", { class: "exception-row" },
    h("legend", { class: "sr-only" }, `Exception ${n}`),
    field("Kind 类型", kind), field("From 开始", start), field("Until 结束", end),
    field("At institution 坐诊机构", inst), field("Slot length 时长", minutes), field("Note 备注", note),
    h("button", { type: "button", class: "btn btn-sm btn-ghost", "aria-label": `Remove exception ${n}`, onclick: () => { row.remove(); onRemove(); } }, "Remove 删除"));
  row.read = () => {
    if (!start.value || !end.value) throw new ApiError(0, "validation_error", `Exception ${n}: give both the start and the end.`);
    const out = { kind: kind.value, start: fromLocalInput(start.value), end: fromLocalInput(end.value) };
    if (kind.value === "onsite" && inst.value) out.institution_id = Number(inst.value);
    if (kind.value === "extra") out.slot_minutes = Number(minutes.value);
    if (note.value.trim()) out.note = note.value.trim();
    return out;
  };
  return row;
}

async function preview(el, expertId) {
  mount(el, loading("Loading the next two weeks… 正在加载"));
  const now = new Date();
  const slots = await api.get(`/api/experts/${expertId}/slots`, { from: now.toISOString(), to: new Date(now.getTime() + 14 * 86400000).toISOString() });
  const days = byDay(slots);
  mount(el, days.length ? h("table", { class: "table preview" },
    h("caption", {}, "Resulting slots, next 14 days 未来两周时段"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Day"), h("th", { scope: "col" }, "Free", h("br"), "可约"), h("th", { scope: "col" }, "Booked", h("br"), "已约"), h("th", { scope: "col" }, h("abbr", { title: "Unavailable (leave or on-site)" }, "Off"), h("br"), "停诊"))),
    h("tbody", {}, days.map(([key, list]) => h("tr", { dataset: { day: key } },
      h("th", { scope: "row" }, fmtDate(list[0].start)),
      ["free", "booked", "blocked"].map((st) => h("td", { class: `count-${st}` }, String(list.filter((s) => s.status === st).length)))))))
    : emptyState("No slots in the next two weeks.", "未来两周无时段"));
}

export async function render({ root, params, user, navigate }) {
  let expertId = params.id ? Number(params.id) : null;
  if (!expertId && isSpecialist(user)) expertId = user.id;
  const manager = isManager(user);
  const picker = manager ? select({ name: "expert", id: "expert-picker" }, [["", "Choose an expert… 选择专家"],
    ...store.experts.map((e) => ({ value: e.id, label: `${e.display_name} — ${e.institution_name}`, group: e.in_my_alliance ? "My alliance 本医联体" : "Other alliances 其他" }))], expertId || "") : null;
  if (picker) picker.addEventListener("change", () => navigate(picker.value ? `#/availability/${picker.value}` : "#/availability"));
  const header = pageHeader("Availability", "出诊时间");
  const pickerBox = picker ? h("div", { class: "filters" }, field("Expert 专家", picker)) : null;
  if (!expertId) {
    mount(root, header, pickerBox, emptyState("Choose an expert to edit their clinic hours.", "请选择专家"));
    return;
  }
  if (!manager && expertId !== user.id) {
    mount(root, header, errorBox(new ApiError(403, "forbidden", "You may edit only your own availability.")));
    return;
  }
  mount(root, header, pickerBox, loading());
  const av = await api.get(`/api/experts/${expertId}/availability`);
  const expert = store.expertsById.get(expertId);
  const errors = errorSlot();

  const rulesBody = h("tbody", {});
  const rulesEmpty = h("p", { class: "muted" }, "No weekly hours: only extra windows produce slots. 无固定出诊时间");
  const syncEmpty = () => { rulesEmpty.hidden = rulesBody.children.length > 0; };
  const addRule = (r) => { rulesBody.append(ruleRow(r, rulesBody.children.length + 1, syncEmpty)); syncEmpty(); };
  [...av.weekly].sort((a, b) => a.weekday - b.weekday || a.start.localeCompare(b.start)).forEach(addRule);
  syncEmpty();

  const excList = h("div", { class: "exception-list" });
  const excEmpty = h("p", { class: "muted" }, "No exceptions. 无例外安排");
  const syncExc = () => { excEmpty.hidden = excList.children.length > 0; };
  const addException = (x) => { excList.append(exceptionRow(x, excList.children.length + 1, syncExc)); syncExc(); };
  av.exceptions.forEach(addException);
  syncExc();

  const tz = select({ name: "timezone" }, TIMEZONES.map((t) => [t, t]), av.timezone);
  const previewEl = h("div", { class: "preview-box" });
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save availability 保存");
  const form = h("form", { class: "availability-form", novalidate: true },
    h("fieldset", { class: "panel" }, h("legend", {}, "Weekly clinic hours ", h("span", { class: "zh" }, "每周出诊")),
      h("div", { class: "table-wrap" }, h("table", { class: "table rules" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Weekday 星期"), h("th", { scope: "col" }, "From 开始"), h("th", { scope: "col" }, "Until 结束"), h("th", { scope: "col" }, "Slot length 每号时长"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Remove")))),
        rulesBody)),
      rulesEmpty,
      h("div", { class: "row-gap" },
        h("button", { type: "button", class: "btn", onclick: () => addRule({ weekday: 0, start: "09:00", end: "12:00", slot_minutes: 30 }) }, "+ Add hours 添加时段"),
        field("Time zone of these hours 时区", tz))),
    h("fieldset", { class: "panel" }, h("legend", {}, "Exceptions ", h("span", { class: "zh" }, "请假 / 坐诊 / 加诊")),
      h("p", { class: "muted small" }, "Times in China Standard Time 北京时间. Leave and on-site days block remote slots; extra hours open one-off slots."),
      excList, excEmpty,
      h("button", { type: "button", class: "btn", onclick: () => {
        const start = new Date(Date.now() + 86400000);
        start.setUTCMinutes(0, 0, 0);
        addException({ kind: "leave", start: start.toISOString(), end: new Date(start.getTime() + 8 * 3600000).toISOString() });
      } }, "+ Add exception 添加例外")),
    errors.el,
    h("div", { class: "form-actions" }, save));

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, async () => {
      const weekly = [...rulesBody.children].map((tr) => tr.read());
      for (const [i, r] of weekly.entries()) {
        if (!r.start || !r.end || r.end <= r.start) throw new ApiError(0, "validation_error", `Weekly rule ${i + 1}: the end must be after the start.`);
      }
      const exceptions = [...excList.children].map((row) => row.read());
      await api.put(`/api/experts/${expertId}/availability`, { timezone: tz.value, weekly, exceptions });
      toast("Availability saved; free slots regenerated. 出诊时间已保存");
      await preview(previewEl, expertId);
    }, errors);
  });

  mount(root, header, pickerBox,
    h("p", { class: "lead" }, expert ? `${expert.display_name} · ${expert.institution_name}` : `Expert #${expertId}`,
      h("span", { class: "muted small" }, " · booked consultations keep their slots when hours change")),
    h("div", { class: "detail-grid" },
      h("div", { class: "detail-main" }, form),
      h("aside", { class: "detail-side" }, h("section", { class: "panel", "aria-labelledby": "pv-title" },
        h("h2", { id: "pv-title" }, "Slots ", h("span", { class: "zh" }, "时段预览")), previewEl))));
  await preview(previewEl, expertId).catch((err) => mount(previewEl, errorBox(err)));
}
