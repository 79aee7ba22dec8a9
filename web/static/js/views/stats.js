// The alliance's statistics (#/stats): scope (alliance, institution, with those below it),
// period, totals, charts by month and by institution (click to drill down), green-channel
// intervals, and the CSV / Excel exports of the same figures.

import { api, session } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";
import { isManager, store } from "../store.js";
import { busy, errorBox, loading, pageHeader } from "../ui/components.js";
import { bounds, defaultValue, picker, PERIODS } from "./stats-period.js";
import { byInstitution, draw, kinds, monthly } from "./stats-charts.js";

const num = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString(document.documentElement.lang || "zh-CN"));
const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)}%`);
const mins = (x) => (x === null || x === undefined ? "—" : t("stats.minutes", { n: x }));

/** The state of the page, read from and written to the hash. */
function readState(query, user) {
  const kind = PERIODS.includes(query.period) ? query.period : "month";
  const value = bounds(kind, query.value) ? query.value : defaultValue(kind);
  return {
    alliance: query.alliance || "",
    institution: query.institution || "",
    below: query.below === "1",
    kind, value,
    doctor: !isManager(user),
  };
}

function hashOf(s) {
  const q = new URLSearchParams();
  if (s.alliance) q.set("alliance", s.alliance);
  if (s.institution) q.set("institution", s.institution);
  if (s.below) q.set("below", "1");
  q.set("period", s.kind);
  q.set("value", s.value);
  return `#/stats?${q}`;
}

function apiQuery(s) {
  const q = { ...bounds(s.kind, s.value) };
  if (s.alliance) q.alliance_id = s.alliance;
  if (s.institution) q.institution_id = s.institution;
  if (s.institution && s.below) q.include_below = "true";
  return q;
}

const nameOf = (row) => (store.institutions.has(row.institution_id) ? store.institutionName(row.institution_id) : row.name);

/** The alliances this user may choose. */
function alliancesFor(user) {
  return user.role === "admin" ? store.alliances : store.myAlliances();
}

function scopeControls(s, user, go) {
  if (s.doctor) return h("p", { class: "muted stats-scope-note" }, t("stats.own_institution", { name: store.institutionName(user.institution_id) }));
  const alliances = alliancesFor(user);
  const allianceSelect = h("select", { id: "stats-alliance", "aria-label": t("stats.alliance") },
    h("option", { value: "" }, user.role === "admin" ? t("stats.all_institutions") : t("stats.all_my_alliances")),
    alliances.map((a) => h("option", { value: String(a.id), selected: String(a.id) === s.alliance }, a.name)));
  allianceSelect.addEventListener("change", () => go({ ...s, alliance: allianceSelect.value, institution: "", below: false }));
  const pool = s.alliance ? (alliances.find((a) => String(a.id) === s.alliance) || { member_ids: [] }).member_ids
    : user.role === "admin" ? [...store.institutions.keys()] : [...new Set(alliances.flatMap((a) => a.member_ids))];
  const instSelect = h("select", { id: "stats-institution", "aria-label": t("stats.institution") },
    h("option", { value: "" }, t("stats.every_member")),
    pool.map((id) => ({ id, name: store.institutionName(id) })).sort((a, b) => a.name.localeCompare(b.name))
      .map((i) => h("option", { value: String(i.id), selected: String(i.id) === s.institution }, i.name)));
  instSelect.addEventListener("change", () => go({ ...s, institution: instSelect.value, below: instSelect.value ? s.below : false }));
  const below = h("input", { type: "checkbox", id: "stats-below", checked: s.below, disabled: !s.institution });
  below.addEventListener("change", () => go({ ...s, below: below.checked }));
  return h("div", { class: "stats-scope" },
    h("label", { class: "stats-control" }, h("span", {}, t("stats.alliance")), allianceSelect),
    h("label", { class: "stats-control" }, h("span", {}, t("stats.institution")), instSelect),
    h("label", { class: "stats-check" }, below, h("span", {}, t("stats.include_below"))));
}

function breadcrumb(s, user, go) {
  if (s.doctor || !s.institution) return null;
  const alliance = store.alliances.find((a) => String(a.id) === s.alliance);
  return h("nav", { class: "stats-crumbs", "aria-label": t("stats.drill_path") },
    h("a", { href: hashOf({ ...s, institution: "", below: false }), onclick: (e) => { e.preventDefault(); go({ ...s, institution: "", below: false }); } },
      alliance ? alliance.name : (user.role === "admin" ? t("stats.all_institutions") : t("stats.all_my_alliances"))),
    h("span", { "aria-hidden": "true" }, " › "),
    h("span", { "aria-current": "page" }, store.institutionName(Number(s.institution))));
}

function card(key, value, sub, extra = {}) {
  return h("div", { class: "stats-card", dataset: { figure: key, ...extra } },
    h("span", { class: "stats-card-label" }, t(`stats.card_${key}`)),
    h("strong", { class: "stats-card-value" }, value),
    sub ? h("span", { class: "stats-card-sub" }, sub) : null);
}

function cards(stats) {
  const c = stats.consultations;
  const r = stats.referrals;
  const g = r.green_channel;
  return h("section", { class: "stats-cards", "aria-label": t("stats.totals") },
    card("consultations", num(c.total), t("stats.received_n", { n: num(c.received.total) }), { value: c.total }),
    card("outpatient", num(c.outpatient_visits), null, { value: c.outpatient_visits }),
    card("imaging", num(c.imaging_reads), null, { value: c.imaging_reads }),
    card("pathology", num(c.pathology_reads), null, { value: c.pathology_reads }),
    card("referrals_up", num(r.up), t("stats.sent_received", { sent: num(r.sent.up), received: num(r.received.up) }), { value: r.up }),
    card("referrals_down", num(r.down), t("stats.sent_received", { sent: num(r.sent.down), received: num(r.received.down) }), { value: r.down }),
    card("green", num(g.count), t("stats.green_medians", { accept: mins(g.median_request_to_accept_min), arrival: mins(g.median_request_to_arrival_min) }), { value: g.count }),
    card("sessions", num(stats.teaching.sessions), null, { value: stats.teaching.sessions }),
    card("person_times", num(stats.teaching.person_times), null, { value: stats.teaching.person_times }),
    card("grassroots", pct(stats.visits.grassroots_share),
      stats.visits.total ? t("stats.visits_of", { part: num(stats.visits.grassroots), whole: num(stats.visits.total) }) : t("stats.no_visits"),
      { value: stats.visits.grassroots_share ?? "" }));
}

function outcomes(stats) {
  const c = stats.consultations;
  const r = stats.referrals;
  const row = (label, n) => h("tr", {}, h("th", { scope: "row" }, label), h("td", { class: "num" }, num(n)));
  return h("section", { class: "panel", "aria-labelledby": "stats-outcomes-title" },
    h("h2", { id: "stats-outcomes-title" }, t("stats.outcomes")),
    h("div", { class: "stats-two" },
      h("table", { class: "table stats-table" }, h("caption", {}, t("stats.consultation_outcomes")),
        h("tbody", {}, Object.entries(c.by_outcome).map(([k, n]) => row(t(`stats.outcome_${k}`), n)))),
      h("table", { class: "table stats-table" }, h("caption", {}, t("stats.referral_outcomes")),
        h("tbody", {}, Object.entries(r.by_outcome).map(([k, n]) => row(t(`stats.referral_${k}`), n))))));
}

function intervals(stats) {
  const list = stats.referrals.green_channel.intervals;
  return h("section", { class: "panel", "aria-labelledby": "stats-green-title" },
    h("h2", { id: "stats-green-title" }, t("stats.green_intervals")),
    list.length ? h("div", { class: "stats-scroll" }, h("table", { class: "table stats-table", id: "stats-green" },
      h("thead", {}, h("tr", {}, [t("stats.interval"), t("stats.channel"), t("stats.count"), t("stats.median"), t("stats.target"), t("stats.met")]
        .map((x, i) => h("th", { scope: "col", class: i >= 2 ? "num" : null }, x)))),
      h("tbody", {}, list.map((i) => h("tr", {},
        h("td", {}, t(`stats.interval_${i.name}`)), h("td", {}, t(`stats.channel_${i.channel}`)),
        h("td", { class: "num" }, num(i.count)), h("td", { class: "num" }, mins(i.median_min)),
        h("td", { class: "num" }, i.target_min ? mins(i.target_min) : "—"),
        h("td", { class: "num" }, i.met === null ? "—" : `${num(i.met)} (${pct(i.count ? i.met / i.count : null)})`))))))
      : h("p", { class: "muted" }, t("stats.no_green")));
}

function institutionTable(stats, s, go) {
  const fields = ["consultations", "consultations_received", "referrals_up", "referrals_down", "green_channel", "teaching_sessions", "person_times", "visits", "grassroots_share"];
  return h("section", { class: "panel", "aria-labelledby": "stats-inst-title" },
    h("h2", { id: "stats-inst-title" }, t("stats.by_institution")),
    h("div", { class: "stats-scroll" }, h("table", { class: "table stats-table", id: "stats-by-institution" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("stats.institution")),
        fields.map((f) => h("th", { scope: "col", class: "num" }, t(`stats.f_${f}`))))),
      h("tbody", {}, stats.by_institution.map((r) => h("tr", { dataset: { institution: r.institution_id } },
        h("th", { scope: "row" }, String(r.institution_id) === s.institution ? nameOf(r)
          : h("a", { href: hashOf({ ...s, institution: String(r.institution_id), below: true }),
            onclick: (e) => { e.preventDefault(); go({ ...s, institution: String(r.institution_id), below: true }); } }, nameOf(r))),
        fields.map((f) => h("td", { class: "num" }, f === "grassroots_share" ? pct(r[f]) : num(r[f])))))))));
}

/** Fetch an export with the bearer token and hand it to the browser as a download. */
async function download(s, format) {
  const url = new URL("/api/stats", window.location.origin);
  for (const [k, v] of Object.entries({ ...apiQuery(s), format })) url.searchParams.set(k, v);
  const res = await fetch(url, { headers: { Authorization: `Bearer ${session.token}` } });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw Object.assign(new Error((body.error && body.error.message) || res.statusText), { code: body.error && body.error.code, fromServer: true, status: res.status });
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
  const blobUrl = URL.createObjectURL(await res.blob());
  const a = h("a", { href: blobUrl, download: name ? name[1] : `yilian-stats.${format}`, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(blobUrl), 10000);
}

export async function render({ root, query, isCurrent, onCleanup }) {
  const user = session.user;
  const s = readState(query, user);
  const go = (next) => { window.location.hash = hashOf(next); };
  const exportButton = (format) => {
    const b = h("button", { type: "button", class: "btn", dataset: { action: `export-${format}` } }, t(`stats.export_${format}`));
    b.addEventListener("click", () => busy(b, () => download(s, format)));
    return b;
  };
  const header = pageHeader(t("stats.title"), isManager(user) ? h("a", { class: "btn", href: "#/stats/visits" }, t("stats.visits_link")) : null,
    exportButton("csv"), exportButton("xlsx"));
  const controls = h("section", { class: "panel stats-controls", "aria-label": t("stats.choose") },
    scopeControls(s, user, go), picker(s.kind, s.value, (kind, value) => go({ ...s, kind, value })));
  mount(root, header, controls, breadcrumb(s, user, go), loading());
  let stats;
  try {
    stats = await api.get("/api/stats", apiQuery(s));
  } catch (err) {
    if (!isCurrent()) return;
    mount(root, header, controls, breadcrumb(s, user, go), errorBox(err));
    return;
  }
  if (!isCurrent()) return;
  const charts = [monthly(stats), kinds(stats), byInstitution(stats, nameOf)];
  mount(root, header, controls, breadcrumb(s, user, go),
    h("p", { class: "muted stats-period-note", id: "stats-period-note" },
      t("stats.period_note", { months: stats.period.months.length, first: stats.period.months[0], last: stats.period.months[stats.period.months.length - 1] })),
    cards(stats),
    h("div", { class: "stats-grid" }, charts[0].panel, charts[1].panel),
    stats.by_institution.length > 1 ? charts[2].panel : null,
    outcomes(stats), intervals(stats),
    institutionTable(stats, s, go));
  const shown = stats.by_institution.length > 1 ? charts : charts.slice(0, 2);
  const dispose = await draw(shown, { onInstitution: (id) => go({ ...s, institution: String(id), below: true }) });
  if (!isCurrent()) { dispose(); return; }
  onCleanup(dispose);
  root.querySelector(".stats-cards").dataset.ready = "true";
}
