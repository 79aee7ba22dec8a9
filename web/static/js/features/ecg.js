// Reading a study's ECG in the browser: each 12-lead waveform drawn on the standard sheet
// (features/ecg-paper.js) from the server's /waveform rendition, with when it was taken and the
// cart's measurements; photos of a paper strip (images in the study) shown as they are.
// renderEcg(container, {studyUid}) is used by the ECG page (views/ecg.js), the image preview and
// the referral page.

import { h, mount } from "../dom.js";
import { errorMessage, t } from "../i18n.js";
import { fmtDateTimeYear } from "../format.js";
import { loading } from "../ui/components.js";
import { PREFIX, dicomJson, fetchOk, imageUrl, num, renderedPath, tag } from "./dicomweb.js";
import { CSS_PX_PER_MM, GAIN, SPEED, drawPaper, paperSize, pickGroup } from "./ecg-paper.js";

/** ECG waveform storage SOP classes (12-lead, general, ambulatory...) share this root. */
export const ECG_WAVEFORM_ROOT = "1.2.840.10008.5.1.4.1.1.9.1.";
export const isEcgWaveform = (sopClass) => String(sopClass || "").startsWith(ECG_WAVEFORM_ROOT);

/** Does a study with these modalities hold an ECG (a waveform or a photographed strip)? */
export function isEcgStudy(modalities) {
  const list = Array.isArray(modalities) ? modalities : String(modalities || "").split(/[\\,\s]+/);
  return list.includes("ECG");
}

const MIN_PX_PER_MM = 2;
const MAX_PX_PER_MM = 4 * CSS_PX_PER_MM;
const ZOOM_STEP = 1.25;
// The cart's measurements shown, in this order, with their units' keys.
const MEASURES = [["heart_rate", "bpm"], ["pr", "ms"], ["qrs", "ms"], ["qt", "ms"], ["qtc", "ms"],
  ["p_axis", "deg"], ["qrs_axis", "deg"], ["t_axis", "deg"]];

const instancePath = (study, series, sop) => `${PREFIX}/studies/${study}/series/${series}/instances/${sop}`;

async function waveformOf(study, series, sop, signal) {
  const res = await fetchOk(`${instancePath(study, series, sop)}/waveform`, "application/json", signal);
  return res.json();
}

function measurements(wave) {
  const byKey = new Map(wave.measurements.filter((m) => m.key).map((m) => [m.key, m]));
  const items = [];
  for (const [key, unit] of MEASURES) {
    const m = byKey.get(key);
    if (!m) continue;
    const value = Number.isInteger(m.value) ? m.value : Math.round(m.value * 10) / 10;
    items.push(h("div", { class: "ecg-measure", dataset: { key } },
      h("dt", {}, t(`ecg.m_${key}`)),
      h("dd", {}, t(`ecg.unit_${unit}`, { value }), m.derived ? h("span", { class: "muted small" }, ` ${t("ecg.derived")}`) : null)));
  }
  return items.length ? h("dl", { class: "ecg-measures", "aria-label": t("ecg.measurements") }, items) : null;
}

/** One waveform instance: its facts, the sheet and the zoom. Returns a destroy function. */
function sheet(wave, host) {
  const group = pickGroup(wave.groups);
  const canvas = h("canvas", { class: "ecg-canvas", role: "img" });
  const scroller = h("div", { class: "ecg-scroll", tabindex: "0" }, canvas);
  const zoomLabel = h("span", { class: "ecg-zoom", "aria-live": "polite" });
  const paper = h("div", { class: "ecg-paper", "data-testid": "ecg-paper", dataset: { speed: SPEED, gain: GAIN, sop: wave.sop_instance_uid } }, scroller);
  let mode = "fit";
  let pxPerMm = CSS_PX_PER_MM;

  function fitWidth() {
    const room = scroller.clientWidth || host.clientWidth || 800;
    return Math.min(MAX_PX_PER_MM, Math.max(MIN_PX_PER_MM, (room - 2) / paperSize().width));
  }

  function draw() {
    if (mode === "fit") pxPerMm = fitWidth();
    const leads = drawPaper(canvas, group, pxPerMm, { footer: t("ecg.speed_gain", { speed: SPEED, gain: GAIN }) });
    paper.dataset.leads = leads.join(",");
    paper.dataset.pxPerMm = pxPerMm.toFixed(3);
    canvas.setAttribute("aria-label", t("ecg.sheet_label", { leads: leads.join(", ") }));
    zoomLabel.textContent = t("ecg.zoom_value", { percent: Math.round((pxPerMm / CSS_PX_PER_MM) * 100) });
  }

  const zoomTo = (next) => { mode = "manual"; pxPerMm = Math.min(MAX_PX_PER_MM, Math.max(MIN_PX_PER_MM, next)); draw(); };
  const tool = (label, title, onclick, testid) => h("button", { type: "button", class: "btn btn-sm", title, "aria-label": title, "data-testid": testid, onclick }, label);
  const toolbar = h("div", { class: "ecg-toolbar" },
    h("span", { class: "ecg-speed" }, t("ecg.speed_gain", { speed: SPEED, gain: GAIN })),
    h("span", { class: "ecg-tools" },
      tool("−", t("ecg.zoom_out"), () => zoomTo(pxPerMm / ZOOM_STEP), "ecg-zoom-out"),
      zoomLabel,
      tool("+", t("ecg.zoom_in"), () => zoomTo(pxPerMm * ZOOM_STEP), "ecg-zoom-in"),
      tool(t("ecg.fit"), t("ecg.fit_title"), () => { mode = "fit"; draw(); }, "ecg-fit"),
      tool(t("ecg.real_size"), t("ecg.real_size_title"), () => zoomTo(CSS_PX_PER_MM), "ecg-real")));

  const device = [wave.manufacturer, wave.model].filter(Boolean).join(" ");
  const facts = h("dl", { class: "ecg-facts" },
    h("div", {}, h("dt", {}, t("ecg.acquired_at")), h("dd", { "data-testid": "ecg-acquired" }, wave.acquired_at ? fmtDateTimeYear(wave.acquired_at) : t("ecg.unknown_time"))),
    device ? h("div", {}, h("dt", {}, t("ecg.device")), h("dd", {}, device)) : null,
    h("div", {}, h("dt", {}, t("ecg.recording")), h("dd", {}, t("ecg.recording_value", { seconds: Math.round(group.duration * 10) / 10, rate: group.sampling_frequency }))));
  const statements = wave.statements.length
    ? h("div", { class: "ecg-statements" }, h("span", { class: "muted" }, t("ecg.device_statements")), " ", wave.statements.join(" · "))
    : null;
  mount(host, h("div", { class: "ecg-head" }, facts, measurements(wave)), statements, toolbar, paper,
    h("p", { class: "muted small" }, t("ecg.layout_note")));
  draw();
  let pending = 0;
  const observer = new ResizeObserver(() => {
    if (mode !== "fit") return;
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(draw);
  });
  observer.observe(scroller);
  return () => { observer.disconnect(); cancelAnimationFrame(pending); };
}

/**
 * Draw the ECG(s) of a study into `container`: each waveform on its sheet, each image (a photo
 * of the paper strip) as rendered by the server. Resolves to {destroy(), leads} once drawn;
 * `container` carries data-leads (the leads of the first sheet) for tests and embedding pages.
 */
export async function renderEcg(container, { studyUid, signal } = {}) {
  container.classList.add("ecg");
  mount(container, loading(t("ecg.loading")));
  const cleanups = [];
  const destroy = () => cleanups.splice(0).forEach((fn) => fn());
  try {
    const instances = await dicomJson(`${PREFIX}/studies/${studyUid}/instances`, signal);
    const sorted = [...instances].sort((a, b) => (num(a, "00200013") || 0) - (num(b, "00200013") || 0));
    const waves = sorted.filter((i) => isEcgWaveform(tag(i, "00080016")));
    const images = sorted.filter((i) => num(i, "00280010"));
    const loaded = await Promise.all(waves.map((i) => waveformOf(studyUid, tag(i, "0020000E"), tag(i, "00080018"), signal)));
    const blocks = loaded.map(() => h("section", { class: "ecg-sheet", "data-testid": "ecg-sheet" }));
    mount(container, blocks);
    loaded.forEach((wave, n) => cleanups.push(sheet(wave, blocks[n])));
    for (const img of images) {
      const el = h("img", { class: "ecg-photo", alt: t("ecg.photo_alt"), "data-testid": "ecg-photo" });
      container.append(h("figure", { class: "ecg-photo-box" }, el, h("figcaption", { class: "muted small" }, t("ecg.photo_caption"))));
      const url = await imageUrl(renderedPath(studyUid, tag(img, "0020000E"), tag(img, "00080018"), null, { viewport: [1600, 1600] }), signal);
      el.src = url;
      cleanups.push(() => URL.revokeObjectURL(url));
    }
    if (!waves.length && !images.length) mount(container, h("div", { class: "empty" }, h("p", {}, t("ecg.none"))));
    const first = container.querySelector(".ecg-paper");
    const leads = first ? first.dataset.leads.split(",").filter(Boolean) : [];
    container.dataset.leads = leads.join(",");
    return { destroy, leads };
  } catch (err) {
    destroy();
    if (err.name === "AbortError") throw err;
    mount(container, h("div", { class: "alert alert-error", role: "alert" }, errorMessage(err)));
    return { destroy, leads: [] };
  }
}
