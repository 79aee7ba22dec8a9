// Display formats and localised labels. Times are shown in Asia/Shanghai (China Standard Time).

export const TZ = "Asia/Shanghai";
export const TZ_OFFSET = "+08:00"; // China has no daylight saving time

import { has, intlLocale, onLocaleChange, t } from "./i18n.js";

// Formatters follow the language: Chinese dates (month, day, weekday in Chinese) or English ("Mon 30 Nov, 14:30").
const dtf = (opts) => new Intl.DateTimeFormat(intlLocale(), { timeZone: TZ, ...opts });
let F;
let rtf;
function buildFormatters() {
  F = {
    dateTime: dtf({ weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }),
    dateTimeYear: dtf({ day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }),
    date: dtf({ weekday: "short", day: "numeric", month: "short" }),
    dateYear: dtf({ day: "numeric", month: "short", year: "numeric" }),
    time: dtf({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" }),
    key: new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" }),
    parts: new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }),
  };
  rtf = new Intl.RelativeTimeFormat(intlLocale(), { numeric: "auto" });
}
buildFormatters();
onLocaleChange(buildFormatters);

const d = (v) => (v instanceof Date ? v : new Date(v));
export const fmtDateTime = (v) => (v ? F.dateTime.format(d(v)) : "—");
export const fmtDateTimeYear = (v) => (v ? F.dateTimeYear.format(d(v)) : "—");
export const fmtDate = (v) => (v ? F.date.format(d(v)) : "—");
export const fmtDateYear = (v) => (v ? F.dateYear.format(d(v)) : "—");
export const fmtTime = (v) => (v ? F.time.format(d(v)) : "—");
/** "YYYY-MM-DD" of the instant in Shanghai. */
export const dayKey = (v) => F.key.format(d(v));
export const fmtSlot = (slot) => (slot ? `${fmtDateTime(slot.start)}–${fmtTime(slot.end)}` : "—");

/** "2026-11-23T09:30" (a datetime-local value) for the instant, in Shanghai time. */
export function toLocalInput(v) {
  const p = Object.fromEntries(F.parts.formatToParts(d(v)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** A datetime-local value read as Shanghai time -> ISO 8601 with offset. */
export function fromLocalInput(value) {
  if (!value) return null;
  return `${value.length === 16 ? `${value}:00` : value}${TZ_OFFSET}`;
}

export function relative(v) {
  const diff = (d(v).getTime() - Date.now()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 60) return rtf.format(Math.round(diff), "second");
  if (abs < 3600) return rtf.format(Math.round(diff / 60), "minute");
  if (abs < 86400 * 2) return rtf.format(Math.round(diff / 3600), "hour");
  return rtf.format(Math.round(diff / 86400), "day");
}

export function age(birthDate) {
  if (!birthDate) return null;
  const b = new Date(`${birthDate}T00:00:00${TZ_OFFSET}`);
  const now = new Date();
  let years = now.getUTCFullYear() - b.getUTCFullYear();
  const m = now.getUTCMonth() - b.getUTCMonth();
  if (m < 0 || (m === 0 && now.getUTCDate() < b.getUTCDate())) years -= 1;
  return years;
}

/** The label of a coded value in the current language: term("status", "requested") -> "Requested" in English.
 * Groups: status, kind, urgency, role, level, sex, specialty, weekday (0 = Monday). */
export function term(group, value) {
  const key = `terms.${group}_${value}`;
  if (has(key)) return t(key);
  return group === "specialty" && value ? String(value).replaceAll("_", " ") : String(value ?? "");
}

export const specialtyLabel = (s) => (s ? term("specialty", s) : "");

/** The patient in one line: "Wang Jianguo · Male · 67 y" (name, sex, age in the current language). */
export function patientLine(p) {
  if (!p) return "";
  const bits = [p.name];
  if (p.sex) bits.push(term("sex", p.sex));
  const a = age(p.birth_date);
  if (a !== null) bits.push(t("common.age_years", { n: a }));
  return bits.join(" · ");
}
