// The light image preview of a consultation's shared study, for a quick look on a slow link:
// the whole image at Fit, zoom about the cursor, pan, window/level presets and drag, scrolling
// through a series. Images are rendered by the server (/rendered, window= per PS3.18) and drawn
// on a <canvas>. Reading happens in OHIF (features/reading.js); slides open there only.

import { api } from "../api.js";
import { h, mount } from "../dom.js";
import { errorMessage, t } from "../i18n.js";
import { patientLine } from "../format.js";
import { openInViewer } from "../features/reading.js";
import { isEcgWaveform, renderEcg } from "../features/ecg.js";
import { WSI_SOP_CLASS, imageBlob, imageUrl, num, renderedPath, seriesMetadata, seriesOf, seriesThumbnailPath, tag } from "../features/dicomweb.js";
import { loading, toast } from "../ui/components.js";

// CT presets (HU): the usual chest and head windows.
const PRESETS = {
  lung: { center: -600, width: 1500 },
  mediastinum: { center: 40, width: 400 },
  bone: { center: 400, width: 1800 },
  brain: { center: 40, width: 80 },
};
const CACHE_LIMIT = 48; // decoded images kept (a 512x512 slice is 1 MB)
const MAX_SIDE = 2048; // larger images are asked for at this size (slow links)
const PREFETCH = [1, -1, 2, -2, 3];

/** Decoded rendered images by path, least recently used dropped (and closed) first. */
class BitmapCache {
  constructor() { this.map = new Map(); }

  get(path) {
    if (this.map.has(path)) {
      const hit = this.map.get(path);
      this.map.delete(path);
      this.map.set(path, hit);
      return hit;
    }
    const pending = imageBlob(path).then((blob) => createImageBitmap(blob));
    this.map.set(path, pending);
    pending.catch(() => this.map.delete(path));
    while (this.map.size > CACHE_LIMIT) {
      const [oldest, value] = this.map.entries().next().value;
      this.map.delete(oldest);
      value.then((b) => b.close(), () => {});
    }
    return pending;
  }

  clear() {
    for (const value of this.map.values()) value.then((b) => b.close(), () => {});
    this.map.clear();
  }
}

/** The images of a radiology series in order: one entry per frame. */
function stackOf(meta) {
  const sorted = [...meta].sort((a, b) => (num(a, "00200013") || 0) - (num(b, "00200013") || 0));
  const out = [];
  for (const m of sorted) {
    const frames = num(m, "00280008") || 1;
    const center = num(m, "00281050");
    const width = num(m, "00281051");
    const rows = num(m, "00280010") || 0;
    const cols = num(m, "00280011") || 0;
    const big = Math.max(rows, cols) > MAX_SIDE;
    // Without a stored window a drag starts from the whole range the pixels can hold.
    const bits = num(m, "00280101") || 8;
    const signed = num(m, "00280103") === 1;
    const slope = num(m, "00281053") ?? 1;
    const intercept = num(m, "00281052") ?? 0;
    const [lo, hi] = signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
    const natural = { center: ((lo + hi) / 2) * slope + intercept, width: Math.max(1, (hi - lo) * Math.abs(slope)) };
    for (let f = 1; f <= frames; f += 1) {
      out.push({ sop: tag(m, "00080018"), frame: frames > 1 ? f : null, viewport: big ? [MAX_SIDE, MAX_SIDE] : null,
        stored: center !== undefined && width > 0 ? { center, width } : null, natural });
    }
  }
  return out;
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const r2 = (v) => String(Math.round(v * 100) / 100);

function toolButton(label, pressed, onclick) {
  return h("button", { type: "button", class: "btn btn-sm pv-tool", "aria-pressed": String(pressed), onclick }, label);
}

/** The preview of one radiology series. */
function stackPreview({ study, series, meta, modality, cache, onCleanup }) {
  const images = stackOf(meta);
  if (!images.length) return h("div", { class: "empty" }, h("p", {}, t("viewer.no_images")));
  let index = Math.floor(images.length / 2);
  let win = null; // null: the image's own window
  let presetKey = "default";
  let mode = "pan";
  let bitmap = null;
  const view = { scale: 1, fit: 1, tx: 0, ty: 0, iw: 0, ih: 0 };

  const canvas = h("canvas", { class: "pv-canvas", role: "img", "data-testid": "preview-canvas" });
  const stage = h("div", { class: "pv-stage", tabindex: 0, "aria-label": t("viewer.stage_label") }, canvas);
  const counter = h("span", { class: "pv-counter", "aria-live": "polite" });
  const wlText = h("span", { class: "pv-wl" });
  const zoomText = h("span", { class: "pv-zoom" });
  const slider = h("input", { type: "range", min: 1, max: images.length, value: index + 1, class: "pv-slider", "aria-label": t("viewer.slider") });
  const presetIds = modality === "CT" ? Object.keys(PRESETS) : [];
  const preset = h("select", { name: "preset", class: "pv-preset", "aria-label": t("viewer.preset") },
    h("option", { value: "default" }, t("viewer.preset_default")),
    presetIds.map((k) => h("option", { value: k }, t("viewer.preset_option", { name: t(`viewer.preset_${k}`), width: PRESETS[k].width, center: PRESETS[k].center }))),
    h("option", { value: "custom", hidden: true }, t("viewer.preset_custom")));

  const ctx = canvas.getContext("2d");
  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const cw = canvas.width / dpr;
    const ch = canvas.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, cw, ch);
    if (!bitmap) return;
    ctx.imageSmoothingEnabled = view.scale < 2;
    const w = view.iw * view.scale;
    const hgt = view.ih * view.scale;
    ctx.drawImage(bitmap, view.tx, view.ty, w, hgt);
    // The drawn image's rectangle in CSS pixels of the canvas, for tests and tools.
    Object.assign(canvas.dataset, { drawX: r2(view.tx), drawY: r2(view.ty), drawW: r2(w), drawH: r2(hgt), scale: r2(view.scale), fitScale: r2(view.fit) });
    zoomText.textContent = t("viewer.zoom_readout", { percent: Math.round(view.scale * 100) });
  }
  function fit() {
    const cw = stage.clientWidth;
    const ch = stage.clientHeight;
    if (!view.iw || !cw || !ch) return;
    view.fit = Math.min(cw / view.iw, ch / view.ih);
    view.scale = view.fit;
    view.tx = (cw - view.iw * view.scale) / 2;
    view.ty = (ch - view.ih * view.scale) / 2;
    draw();
  }
  function resize() {
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(stage.clientWidth * dpr));
    canvas.height = Math.max(1, Math.round(stage.clientHeight * dpr));
    fit();
  }
  /** Zoom by `factor` keeping the image point under (x, y) where it is. */
  function zoomAt(factor, x, y) {
    if (!view.iw) return;
    const next = clamp(view.scale * factor, view.fit / 2, Math.max(view.fit * 2, 10));
    view.tx = x - (x - view.tx) * (next / view.scale);
    view.ty = y - (y - view.ty) * (next / view.scale);
    view.scale = next;
    draw();
  }
  const zoomCentre = (factor) => zoomAt(factor, stage.clientWidth / 2, stage.clientHeight / 2);

  const effective = () => win || images[index].stored;
  function describe() {
    const w = effective();
    wlText.textContent = w ? t("viewer.wl_readout", { width: Math.round(w.width), center: Math.round(w.center) }) : t("viewer.wl_default");
    preset.value = presetKey;
    preset.querySelector("option[value=custom]").hidden = presetKey !== "custom";
    stage.dataset.preset = presetKey;
  }
  const pathOf = (it) => renderedPath(study, series, it.sop, it.frame, { window: win, viewport: it.viewport });

  let seq = 0;
  async function show({ prefetch = true } = {}) {
    const mine = ++seq;
    const it = images[index];
    counter.textContent = t("viewer.counter", { n: index + 1, total: images.length });
    canvas.setAttribute("aria-label", t("viewer.image_label", { n: index + 1, total: images.length }));
    slider.value = String(index + 1);
    describe();
    const path = pathOf(it);
    stage.setAttribute("aria-busy", "true");
    try {
      const next = await cache.get(path);
      if (mine !== seq) return;
      const first = !view.iw || next.width !== view.iw || next.height !== view.ih;
      bitmap = next;
      view.iw = next.width;
      view.ih = next.height;
      if (first) fit(); else draw();
      Object.assign(canvas.dataset, { index: String(index), sop: it.sop, loaded: path });
    } catch (err) {
      if (mine === seq) toast(errorMessage(err), "error");
      return;
    } finally {
      if (mine === seq) stage.removeAttribute("aria-busy");
    }
    for (const d of prefetch ? PREFETCH : []) {
      const n = images[index + d];
      if (n) cache.get(pathOf(n)).catch(() => {});
    }
  }
  const go = (i) => {
    const next = clamp(i, 0, images.length - 1);
    if (next !== index) { index = next; show(); }
  };
  // While a W/L drag goes on, one rendering is asked at a time, with the latest window, and
  // the neighbours are fetched only once the drag ends (a slow link carries no wasted images).
  let wlBusy = false;
  let wlAgain = false;
  async function windowNow() {
    if (wlBusy) { wlAgain = true; return; }
    wlBusy = true;
    try { await show({ prefetch: !drag }); } finally { wlBusy = false; }
    if (wlAgain) { wlAgain = false; windowNow(); }
  }

  const tools = [["pan", t("viewer.tool_pan")], ["wl", t("viewer.tool_wl")], ["stack", t("viewer.tool_stack")]];
  const toolGroup = h("div", { class: "pv-group", role: "group", "aria-label": t("viewer.tools") }, tools.map(([key, label]) => {
    const b = toolButton(label, key === mode, () => {
      mode = key;
      stage.dataset.mode = key;
      for (const other of toolGroup.querySelectorAll(".pv-tool")) other.setAttribute("aria-pressed", String(other === b));
    });
    b.dataset.tool = key;
    return b;
  }));
  stage.dataset.mode = mode;

  // Pointers: one drags (pan, W/L or scroll by the tool; the right button always W/L), two pinch.
  const pointers = new Map();
  let drag = null;
  let pinch = null;
  const at = (ev) => {
    const r = canvas.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  };
  const pinchState = () => {
    const [a, b] = [...pointers.values()];
    return { dist: Math.hypot(a.x - b.x, a.y - b.y) || 1, mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
  };
  canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  canvas.addEventListener("pointerdown", (ev) => {
    stage.focus({ preventScroll: true });
    try { canvas.setPointerCapture(ev.pointerId); } catch { /* a pointer already gone */ }
    pointers.set(ev.pointerId, at(ev));
    if (pointers.size === 2) {
      drag = null;
      pinch = { ...pinchState(), scale: view.scale, tx: view.tx, ty: view.ty };
      return;
    }
    if (pointers.size > 2) return;
    const p = at(ev);
    drag = { kind: ev.button === 2 ? "wl" : mode, x: p.x, y: p.y, tx: view.tx, ty: view.ty, index,
      base: effective() || images[index].natural };
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!pointers.has(ev.pointerId)) return;
    const p = at(ev);
    pointers.set(ev.pointerId, p);
    if (pinch && pointers.size === 2) {
      const now = pinchState();
      const next = clamp(pinch.scale * (now.dist / pinch.dist), view.fit / 2, Math.max(view.fit * 2, 10));
      view.tx = now.mid.x - (pinch.mid.x - pinch.tx) * (next / pinch.scale);
      view.ty = now.mid.y - (pinch.mid.y - pinch.ty) * (next / pinch.scale);
      view.scale = next;
      draw();
      return;
    }
    if (!drag) return;
    const dx = p.x - drag.x;
    const dy = p.y - drag.y;
    if (drag.kind === "pan") {
      view.tx = drag.tx + dx;
      view.ty = drag.ty + dy;
      draw();
    } else if (drag.kind === "stack") {
      go(drag.index + Math.round(dy / 8));
    } else if (Math.abs(dx) + Math.abs(dy) > 1) {
      // Horizontal changes the width, vertical the level, in proportion to the window.
      const k = Math.max(1, drag.base.width / 256);
      win = { center: drag.base.center + dy * k, width: Math.max(1, drag.base.width + dx * k) };
      presetKey = "custom";
      describe();
      windowNow();
    }
  });
  const release = (ev) => {
    pointers.delete(ev.pointerId);
    if (pointers.size < 2) pinch = null;
    const windowed = drag && drag.kind === "wl" && presetKey === "custom";
    drag = null;
    if (windowed) windowNow();
  };
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  stage.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    if (mode === "stack") { go(index + (ev.deltaY > 0 ? 1 : -1)); return; }
    const p = at(ev);
    zoomAt(Math.exp(-clamp(ev.deltaY, -200, 200) * 0.002), p.x, p.y);
  }, { passive: false });
  stage.addEventListener("keydown", (ev) => {
    const moves = { ArrowDown: 1, ArrowRight: 1, PageDown: 5, ArrowUp: -1, ArrowLeft: -1, PageUp: -5 };
    if (ev.key in moves) go(index + moves[ev.key]);
    else if (ev.key === "Home") go(0);
    else if (ev.key === "End") go(images.length - 1);
    else if (ev.key === "+" || ev.key === "=") zoomCentre(1.25);
    else if (ev.key === "-") zoomCentre(0.8);
    else if (ev.key === "0") fit();
    else return;
    ev.preventDefault();
  });
  slider.addEventListener("input", () => go(Number(slider.value) - 1));
  preset.addEventListener("change", () => {
    if (preset.value === "custom") return;
    presetKey = preset.value;
    win = PRESETS[presetKey] || null;
    show();
  });

  const observer = new ResizeObserver(() => resize());
  observer.observe(stage);
  onCleanup(() => { observer.disconnect(); seq += 1; });
  queueMicrotask(show);
  const zoomGroup = h("div", { class: "pv-group", role: "group", "aria-label": t("viewer.zoom_group") },
    h("button", { type: "button", class: "btn btn-sm", "aria-label": t("viewer.zoom_out"), "data-testid": "zoom-out", onclick: () => zoomCentre(0.8) }, "−"),
    zoomText,
    h("button", { type: "button", class: "btn btn-sm", "aria-label": t("viewer.zoom_in"), "data-testid": "zoom-in", onclick: () => zoomCentre(1.25) }, "+"),
    h("button", { type: "button", class: "btn btn-sm", "data-testid": "zoom-fit", onclick: fit }, t("viewer.fit")));
  return h("div", { class: "pv" },
    h("div", { class: "pv-toolbar" }, toolGroup, preset, zoomGroup),
    stage,
    h("div", { class: "pv-footer" }, counter, slider, wlText),
    h("p", { class: "muted small pv-hint" }, t("viewer.hint")));
}

/** A whole-slide series: its thumbnail (the single-tile level) and the way to OHIF. */
function slidePanel({ study, series, meta, urls }) {
  const levels = meta.map((m) => ({ sop: tag(m, "00080018"), frames: num(m, "00280008") || 1, tile: num(m, "00280011") || 0,
    width: num(m, "00480006") || num(m, "00280011") || 0, height: num(m, "00480007") || num(m, "00280010") || 0 }))
    .sort((a, b) => (a.frames - b.frames) || (a.width - b.width));
  const img = h("img", { alt: t("viewer.slide_thumb_alt"), "data-testid": "slide-thumbnail" });
  // The single-tile level is padded to the tile size: the frame shows the slide's part only.
  const frame = h("div", { class: "pv-slide-thumb" }, img);
  const l = levels[0];
  if (l && l.frames === 1 && l.tile && l.width && l.height && l.width <= l.tile) {
    frame.style.aspectRatio = `${l.width} / ${l.height}`;
    img.style.width = `${(l.tile / l.width) * 100}%`;
  }
  if (levels.length) {
    imageUrl(renderedPath(study, series, levels[0].sop, null, { viewport: [640, 640] }))
      .then((u) => { urls.push(u); img.src = u; }, () => img.classList.add("pv-failed"));
  }
  return h("div", { class: "pv pv-slide" },
    frame,
    h("p", {}, t("viewer.slide_note")),
    h("button", { type: "button", class: "btn btn-primary", "data-testid": "open-ohif",
      onclick: () => open({ studyUid: study, modalities: ["SM"] }) }, t("viewer.open_ohif_microscopy")));
}

function open(studyRef) {
  if (!openInViewer(studyRef)) toast(t("viewer.popup_blocked"), "error");
}

export async function render({ root, params, query, onCleanup, isCurrent }) {
  const id = Number(params.id);
  const study = params.uid;
  mount(root, loading(t("viewer.loading")));
  const c = await api.get(`/api/consultations/${id}`);
  const back = h("a", { class: "btn", href: `#/consultations/${id}` }, t("viewer.back"));
  const header = (...actions) => h("div", { class: "page-header" },
    h("h1", { tabindex: "-1" }, t("viewer.title", { id })), h("div", { class: "page-actions" }, actions, back));
  if (!c.study_uids.includes(study)) {
    mount(root, header(), h("div", { class: "empty" }, h("p", {}, t("viewer.not_shared"))));
    return;
  }
  const series = await seriesOf(study);
  if (!isCurrent()) return;
  const cache = new BitmapCache();
  const urls = [];
  const cleanups = [];
  onCleanup(() => {
    cleanups.splice(0).forEach((fn) => fn());
    cache.clear();
    urls.splice(0).forEach((u) => URL.revokeObjectURL(u));
  });
  const uidOf = (s) => tag(s, "0020000E");
  const sorted = [...series].sort((a, b) => (num(a, "00200011") || 0) - (num(b, "00200011") || 0));
  const modalities = [...new Set(sorted.map((s) => tag(s, "00080060")).filter(Boolean))];
  let current = query.series && sorted.some((s) => uidOf(s) === query.series) ? query.series : (sorted[0] && uidOf(sorted[0]));
  const main = h("div", { class: "pv-main" });
  const list = h("ul", { class: "pv-series" });

  async function openSeries(uid) {
    current = uid;
    for (const li of list.children) li.querySelector("button").setAttribute("aria-pressed", String(li.dataset.series === uid));
    cleanups.splice(0).forEach((fn) => fn());
    mount(main, loading(t("viewer.loading")));
    try {
      const meta = await seriesMetadata(study, uid);
      if (!isCurrent() || current !== uid) return;
      const s = sorted.find((x) => uidOf(x) === uid);
      const args = { study, series: uid, meta, modality: tag(s, "00080060"), cache, urls, onCleanup: (fn) => cleanups.push(fn) };
      if (meta.some((m) => isEcgWaveform(tag(m, "00080016")))) { // drawn on the ECG grid, not rendered
        const panel = h("div", { class: "pv-ecg" });
        mount(main, panel);
        const ecg = await renderEcg(panel, { studyUid: study });
        cleanups.push(ecg.destroy);
        return;
      }
      mount(main, meta.some((m) => tag(m, "00080016") === WSI_SOP_CLASS) ? slidePanel(args) : stackPreview(args));
      const stage = main.querySelector(".pv-stage");
      if (stage) stage.focus({ preventScroll: true });
    } catch (err) {
      if (isCurrent()) mount(main, h("div", { class: "alert alert-error", role: "alert" }, errorMessage(err)));
    }
  }

  for (const s of sorted) {
    const uid = uidOf(s);
    const ecgSeries = tag(s, "00080060") === "ECG"; // a waveform has no image to thumbnail: a grid stands in
    const thumb = h("img", { class: ["pv-thumb", ecgSeries && "pv-thumb-ecg"], alt: "", width: 64, height: 64 });
    imageUrl(seriesThumbnailPath(study, uid)).then((u) => { urls.push(u); thumb.src = u; }, () => { if (!ecgSeries) thumb.classList.add("pv-failed"); });
    const count = num(s, "00201209");
    list.append(h("li", { dataset: { series: uid } }, h("button", { type: "button", class: "pv-series-btn", "aria-pressed": "false", onclick: () => openSeries(uid) },
      thumb,
      h("span", { class: "pv-series-text" },
        h("strong", {}, t("viewer.series_label", { modality: tag(s, "00080060") || "?", description: tag(s, "0008103E") || t("viewer.series_untitled") })),
        h("span", { class: "muted small" }, count === undefined ? "" : t("viewer.image_count", { n: count }))))));
  }

  const ohif = h("button", { type: "button", class: "btn btn-primary", "data-testid": "open-ohif",
    onclick: () => open({ studyUid: study, modalities }) }, t("viewer.open_ohif"));
  mount(root, header(ohif),
    h("p", { class: "muted" }, patientLine(c.patient), " · ", h("code", { class: "uid" }, study)),
    series.length ? h("div", { class: "pv-grid" },
      h("aside", { class: "panel pv-series-panel", "aria-labelledby": "pv-series-title" }, h("h2", { id: "pv-series-title" }, t("viewer.series")), list),
      main) : h("div", { class: "empty" }, h("p", {}, t("viewer.no_series"))));
  if (current) await openSeries(current);
}
