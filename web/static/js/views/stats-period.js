// The statistics' period picker: a month, a quarter, a year or custom dates, in Beijing time
// (China keeps +08:00 all year). The choice lives in the page's hash, so a view can be shared.

import { h } from "../dom.js";
import { TZ, TZ_OFFSET } from "../format.js";
import { t } from "../i18n.js";

export const PERIODS = ["month", "quarter", "year", "custom"];
const pad = (n) => String(n).padStart(2, "0");
const start = (y, m) => `${y}-${pad(m)}-01T00:00:00${TZ_OFFSET}`;

/** Today in Beijing as { y, m, d } (numbers). */
export function today() {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date());
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return { y: get("year"), m: get("month"), d: get("day") };
}

/** The default value of each kind of period: the current month, quarter and year. */
export function defaultValue(kind) {
  const { y, m, d } = today();
  if (kind === "month") return `${y}-${pad(m)}`;
  if (kind === "quarter") return `${y}-Q${Math.floor((m - 1) / 3) + 1}`;
  if (kind === "year") return String(y);
  return `${y}-${pad(m)}-01~${y}-${pad(m)}-${pad(d)}`;
}

/** { from, to } for the API from a period kind and value; null when the value is not valid. */
export function bounds(kind, value) {
  let match;
  if (kind === "month" && (match = /^(\d{4})-(\d{2})$/.exec(value || ""))) {
    const y = Number(match[1]); const m = Number(match[2]);
    if (m < 1 || m > 12) return null;
    return { from: start(y, m), to: m === 12 ? start(y + 1, 1) : start(y, m + 1) };
  }
  if (kind === "quarter" && (match = /^(\d{4})-Q([1-4])$/.exec(value || ""))) {
    const y = Number(match[1]); const q = Number(match[2]);
    return { from: start(y, q * 3 - 2), to: q === 4 ? start(y + 1, 1) : start(y, q * 3 + 1) };
  }
  if (kind === "year" && /^\d{4}$/.test(value || "")) {
    const y = Number(value);
    return { from: start(y, 1), to: start(y + 1, 1) };
  }
  if (kind === "custom" && (match = /^(\d{4}-\d{2}-\d{2})~(\d{4}-\d{2}-\d{2})$/.exec(value || ""))) {
    return { from: match[1], to: match[2] }; // dates: the server takes `to` as a whole day
  }
  return null;
}

/** The picker: kind and value controls; `onChange(kind, value)` when either changes. */
export function picker(kind, value, onChange) {
  const kindSelect = h("select", { id: "stats-period-kind", "aria-label": t("stats.period") },
    PERIODS.map((k) => h("option", { value: k, selected: k === kind }, t(`stats.period_${k}`))));
  kindSelect.addEventListener("change", () => onChange(kindSelect.value, defaultValue(kindSelect.value)));
  const { y } = today();
  let controls;
  if (kind === "month") {
    const input = h("input", { type: "month", id: "stats-month", value, "aria-label": t("stats.period_month"), required: true });
    input.addEventListener("change", () => input.value && onChange(kind, input.value));
    controls = [input];
  } else if (kind === "quarter") {
    const [year, q] = value.split("-Q");
    const ys = yearSelect(year, y, "stats-quarter-year");
    const qs = h("select", { id: "stats-quarter", "aria-label": t("stats.period_quarter") },
      [1, 2, 3, 4].map((n) => h("option", { value: String(n), selected: String(n) === q }, t("stats.quarter_n", { n }))));
    const change = () => onChange(kind, `${ys.value}-Q${qs.value}`);
    ys.addEventListener("change", change);
    qs.addEventListener("change", change);
    controls = [ys, qs];
  } else if (kind === "year") {
    const ys = yearSelect(value, y, "stats-year");
    ys.addEventListener("change", () => onChange(kind, ys.value));
    controls = [ys];
  } else {
    const [a, b] = value.split("~");
    const from = h("input", { type: "date", id: "stats-from", value: a, "aria-label": t("stats.from") });
    const to = h("input", { type: "date", id: "stats-to", value: b, "aria-label": t("stats.to") });
    const change = () => from.value && to.value && onChange(kind, `${from.value}~${to.value}`);
    from.addEventListener("change", change);
    to.addEventListener("change", change);
    controls = [from, h("span", { "aria-hidden": "true" }, "–"), to];
  }
  return h("div", { class: "stats-period" }, kindSelect, controls);
}

function yearSelect(selected, current, id) {
  const years = [];
  for (let year = current; year >= current - 9; year -= 1) years.push(year);
  return h("select", { id, "aria-label": t("stats.period_year") },
    years.map((year) => h("option", { value: String(year), selected: String(year) === String(selected) }, t("stats.year_n", { n: year }))));
}
