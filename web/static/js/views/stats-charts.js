// The dashboard's charts, drawn with ECharts (vendored from npm by web/build.py; loaded only
// when the statistics page opens). Each chart has a table of the same numbers for screen
// readers. Tooltips are drawn on the canvas (the page's CSP allows no inline styles).

import { h } from "../dom.js";
import { locale, t } from "../i18n.js";

let loaded = null;
/** ECharts, imported once. */
export function echartsModule() {
  if (!loaded) loaded = import("/static/vendor/echarts/echarts.esm.min.js");
  return loaded;
}

const COLORS = ["#0f766e", "#2563eb", "#d97706", "#7c3aed", "#dc2626", "#0891b2"];

/** A chart box with its caption and data table; `draw(echarts, el)` fills it once attached. */
function box(id, title, head, rows) {
  const el = h("div", { class: "stats-chart", id, role: "img", "aria-label": title });
  const table = h("div", { class: "sr-only" }, h("table", { class: "stats-chart-data", dataset: { chart: id } },
    h("caption", {}, title),
    h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((x) => h("td", {}, String(x))))))));
  return { el, panel: h("section", { class: "panel stats-chart-panel", "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), el, table) };
}

function base(extra) {
  return {
    color: COLORS,
    animation: false,
    grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
    legend: { top: 0, type: "scroll" },
    tooltip: { trigger: "axis", renderMode: "richText" },
    ...extra,
  };
}

/** Consultations, referrals up and down and person-times, month by month. */
export function monthly(stats) {
  const months = stats.by_month.map((m) => m.month);
  const series = [
    ["consultations", "bar"], ["referrals_up", "bar"], ["referrals_down", "bar"], ["person_times", "line"],
  ];
  const head = [t("stats.month"), ...series.map(([f]) => t(`stats.f_${f}`))];
  const rows = stats.by_month.map((m) => [m.month, ...series.map(([f]) => m[f])]);
  const chart = box("stats-monthly", t("stats.chart_monthly"), head, rows);
  chart.option = base({
    xAxis: { type: "category", data: months, axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", minInterval: 1 },
    series: series.map(([f, type]) => ({ name: t(`stats.f_${f}`), type, data: stats.by_month.map((m) => m[f]), smooth: type === "line" })),
  });
  return chart;
}

/** Each institution's consultations, received consultations and referrals (click: drill down). */
export function byInstitution(stats, nameOf) {
  const rows = [...stats.by_institution].sort((a, b) => activity(a) - activity(b));
  const fields = ["consultations", "consultations_received", "referrals_up", "referrals_down"];
  const head = [t("stats.institution"), ...fields.map((f) => t(`stats.f_${f}`))];
  const chart = box("stats-institutions", t("stats.chart_institutions"), head,
    [...rows].reverse().map((r) => [nameOf(r), ...fields.map((f) => r[f])]));
  chart.ids = rows.map((r) => r.institution_id);
  chart.option = base({
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, renderMode: "richText" },
    xAxis: { type: "value", minInterval: 1, axisLabel: { hideOverlap: true } },
    yAxis: { type: "category", data: rows.map(nameOf), axisLabel: { width: window.innerWidth < 600 ? 90 : 160, overflow: "truncate" } },
    series: fields.map((f) => ({ name: t(`stats.f_${f}`), type: "bar", stack: f.startsWith("referrals") ? "ref" : undefined,
      data: rows.map((r) => r[f]) })),
  });
  chart.height = Math.max(220, rows.length * 34 + 60);
  return chart;
}

const activity = (r) => r.consultations + r.consultations_received + r.referrals_up + r.referrals_down;

/** Consultations by kind, as a ring. */
export function kinds(stats) {
  const byKind = stats.consultations.by_kind;
  const rows = Object.entries(byKind).map(([k, n]) => [t(`stats.kind_${k}`), n]);
  const chart = box("stats-kinds", t("stats.chart_kinds"), [t("stats.kind"), t("stats.count")], rows);
  chart.option = {
    color: COLORS,
    animation: false,
    tooltip: { trigger: "item", renderMode: "richText" },
    legend: { orient: "vertical", left: 0, top: "middle", formatter: (name) => `${name} ${rows.find((r) => r[0] === name)?.[1] ?? ""}` },
    series: [{ type: "pie", radius: ["38%", "64%"], center: ["66%", "50%"], label: { show: false },
      data: Object.entries(byKind).map(([k, n]) => ({ name: t(`stats.kind_${k}`), value: n })) }],
  };
  return chart;
}

/** Draw the charts into their boxes (already in the page); returns a function that disposes them. */
export async function draw(charts, { onInstitution } = {}) {
  const echarts = await echartsModule();
  const lang = locale() === "en" ? "EN" : "ZH";
  const made = charts.map((chart) => {
    if (chart.height) chart.el.style.height = `${chart.height}px`;
    const instance = echarts.init(chart.el, null, { renderer: "canvas", locale: lang });
    instance.setOption(chart.option);
    if (chart.ids && onInstitution) {
      instance.on("click", (p) => { if (p.componentType === "series") onInstitution(chart.ids[p.dataIndex]); });
      instance.getZr().on("click", (e) => {
        const point = instance.convertFromPixel({ seriesIndex: 0 }, [e.offsetX, e.offsetY]);
        if (e.target || !point) return;
        const index = point[1];
        if (index >= 0 && index < chart.ids.length) onInstitution(chart.ids[index]);
      });
    }
    chart.el.dataset.drawn = "true";
    return instance;
  });
  const resize = () => made.forEach((m) => m.resize());
  window.addEventListener("resize", resize);
  return () => {
    window.removeEventListener("resize", resize);
    made.forEach((m) => m.dispose());
  };
}
