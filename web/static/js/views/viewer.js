// The image viewer of a consultation's shared study: radiology series scroll image by image with
// window/level and zoom; whole-slide images (pathology) pan over a tile mosaic, level by level.

import { api } from "../api.js";
import { field, h, mount, select } from "../dom.js";
import { WSI_SOP_CLASS, imageUrl, renderedPath, seriesMetadata, seriesOf, seriesThumbnailPath, tag } from "../features/dicomweb.js";
import { patientLine } from "../format.js";
import { emptyState, errorBox, loading, pageHeader } from "../ui/components.js";

const PRESETS = [
  ["default", "As stored 默认", null],
  ["lung", "Lung 肺窗 (-600 / 1500)", { center: -600, width: 1500 }],
  ["mediastinum", "Mediastinum 纵隔窗 (40 / 400)", { center: 40, width: 400 }],
  ["bone", "Bone 骨窗 (400 / 1800)", { center: 400, width: 1800 }],
  ["brain", "Brain 脑窗 (40 / 80)", { center: 40, width: 80 }],
  ["abdomen", "Abdomen 腹窗 (50 / 350)", { center: 50, width: 350 }],
];
const CACHE_LIMIT = 160;

/** Object URLs of rendered images, least recently used dropped first. */
class ImageCache {
  constructor() { this.map = new Map(); }

  async get(path) {
    if (this.map.has(path)) {
      const hit = this.map.get(path);
      this.map.delete(path);
      this.map.set(path, hit);
      return hit;
    }
    const pending = imageUrl(path);
    this.map.set(path, pending);
    pending.catch(() => this.map.delete(path));
    while (this.map.size > CACHE_LIMIT) {
      const [oldest, value] = this.map.entries().next().value;
      this.map.delete(oldest);
      Promise.resolve(value).then((u) => URL.revokeObjectURL(u), () => {});
    }
    return pending;
  }

  clear() {
    for (const value of this.map.values()) Promise.resolve(value).then((u) => URL.revokeObjectURL(u), () => {});
    this.map.clear();
  }
}

function num(v) { return v === undefined || v === null ? undefined : Number(v); }

/** Images of a radiology series in order: one entry per frame. */
function stackOf(meta) {
  const sorted = [...meta].sort((a, b) => (num(tag(a, "00200013")) || 0) - (num(tag(b, "00200013")) || 0));
  const out = [];
  for (const m of sorted) {
    const sop = tag(m, "00080018");
    const frames = num(tag(m, "00280008")) || 1;
    const center = num(tag(m, "00281050"));
    const width = num(tag(m, "00281051"));
    for (let f = 1; f <= frames; f += 1) {
      out.push({ sop, frame: frames > 1 ? f : null, stored: center !== undefined && width > 0 ? { center, width } : null,
        rows: num(tag(m, "00280010")), cols: num(tag(m, "00280011")), number: num(tag(m, "00200013")) });
    }
  }
  return out;
}

function stackViewer(study, series, meta, cache, onCleanup) {
  const images = stackOf(meta);
  if (!images.length) return emptyState("This series has no images.", "该序列无图像");
  let index = Math.floor(images.length / 2);
  let win = null; // null = as stored
  let zoom = 1;
  const img = h("img", { class: "dicom-image", alt: "" });
  const counter = h("span", { class: "viewer-counter", "aria-live": "polite" });
  const wlText = h("span", { class: "viewer-wl" });
  const slider = h("input", { type: "range", min: 1, max: images.length, value: index + 1, class: "viewer-slider", "aria-label": "Image in series" });
  const preset = select({ name: "preset" }, PRESETS.map(([k, label]) => [k, label]), "default");
  const centerIn = h("input", { type: "number", name: "center", step: 1, class: "wl-input" });
  const widthIn = h("input", { type: "number", name: "width", step: 1, min: 1, class: "wl-input" });
  const stage = h("div", { class: "viewer-stage", tabindex: 0, role: "img",
    "aria-label": "Image viewer: arrow keys or the mouse wheel scroll through the series; drag to change window and level" }, img);

  const effective = () => win || images[index].stored;
  const describe = () => {
    const w = effective();
    wlText.textContent = w ? `W ${Math.round(w.width)} / L ${Math.round(w.center)}` : "W/L as stored";
    centerIn.value = w ? Math.round(w.center) : "";
    widthIn.value = w ? Math.round(w.width) : "";
  };
  let seq = 0;
  async function show() {
    const mine = ++seq;
    const it = images[index];
    counter.textContent = `Image ${index + 1} / ${images.length}`;
    slider.value = String(index + 1);
    describe();
    const path = renderedPath(study, series, it.sop, it.frame, { window: win });
    try {
      const url = await cache.get(path);
      if (mine !== seq) return;
      img.src = url;
      img.alt = `Image ${index + 1} of ${images.length}`;
      stage.dataset.index = String(index);
      stage.dataset.loaded = path;
    } catch (err) {
      if (mine === seq) stage.replaceChildren(errorBox(err));
      return;
    }
    for (const d of [1, -1, 2, 3]) {
      const n = images[index + d];
      if (n) cache.get(renderedPath(study, series, n.sop, n.frame, { window: win })).catch(() => {});
    }
  }
  const go = (i) => {
    const next = Math.max(0, Math.min(images.length - 1, i));
    if (next !== index) { index = next; show(); }
  };
  const setWindow = (w) => { win = w; show(); };
  const applyZoom = () => { img.style.transform = `scale(${zoom})`; zoomText.textContent = `${Math.round(zoom * 100)}%`; };

  slider.addEventListener("input", () => go(Number(slider.value) - 1));
  stage.addEventListener("wheel", (ev) => { ev.preventDefault(); go(index + (ev.deltaY > 0 ? 1 : -1)); }, { passive: false });
  stage.addEventListener("keydown", (ev) => {
    const moves = { ArrowDown: 1, ArrowRight: 1, PageDown: 5, ArrowUp: -1, ArrowLeft: -1, PageUp: -5 };
    if (ev.key in moves) { ev.preventDefault(); go(index + moves[ev.key]); }
    if (ev.key === "Home") { ev.preventDefault(); go(0); }
    if (ev.key === "End") { ev.preventDefault(); go(images.length - 1); }
  });
  // Drag: horizontal changes the width, vertical the level (centre), as on a PACS workstation.
  let drag = null;
  stage.addEventListener("pointerdown", (ev) => {
    const base = effective() || { center: 40, width: 400 };
    drag = { x: ev.clientX, y: ev.clientY, base };
    stage.setPointerCapture(ev.pointerId);
  });
  stage.addEventListener("pointermove", (ev) => {
    if (!drag) return;
    const width = Math.max(1, drag.base.width + (ev.clientX - drag.x) * 4);
    const center = drag.base.center + (ev.clientY - drag.y) * 2;
    win = { center, width };
    preset.value = "default";
    describe();
  });
  const endDrag = () => {
    if (!drag) return;
    drag = null;
    preset.value = "";
    show();
  };
  stage.addEventListener("pointerup", endDrag);
  stage.addEventListener("pointercancel", endDrag);
  preset.addEventListener("change", () => {
    const found = PRESETS.find(([k]) => k === preset.value);
    setWindow(found ? found[2] : win);
  });
  const manual = h("form", { class: "wl-form", onsubmit: (ev) => {
    ev.preventDefault();
    const center = Number(centerIn.value);
    const width = Number(widthIn.value);
    if (Number.isFinite(center) && width > 0) { preset.value = ""; setWindow({ center, width }); }
  } }, field("Level 窗位", centerIn), field("Width 窗宽", widthIn), h("button", { type: "submit", class: "btn btn-sm" }, "Apply 应用"));
  const zoomText = h("span", { class: "viewer-zoom" }, "100%");
  const zoomBtns = h("div", { class: "zoom-buttons", role: "group", "aria-label": "Zoom" },
    h("button", { type: "button", class: "btn btn-sm", "aria-label": "Zoom out", onclick: () => { zoom = Math.max(0.5, zoom / 1.25); applyZoom(); } }, "−"),
    zoomText,
    h("button", { type: "button", class: "btn btn-sm", "aria-label": "Zoom in", onclick: () => { zoom = Math.min(6, zoom * 1.25); applyZoom(); } }, "+"),
    h("button", { type: "button", class: "btn btn-sm", onclick: () => { zoom = 1; applyZoom(); } }, "Fit 适应"));
  onCleanup(() => { seq += 1; });
  show();
  return h("div", { class: "viewer" },
    h("div", { class: "viewer-toolbar" }, field("Window preset 窗宽窗位", preset), manual, zoomBtns),
    stage,
    h("div", { class: "viewer-footer" }, counter, slider, wlText));
}

/** Whole-slide image: pick a pyramid level; its tiles are laid out and fetched as they scroll in. */
function slideViewer(study, series, meta, cache, onCleanup) {
  const levels = meta.map((m) => ({
    sop: tag(m, "00080018"), frames: num(tag(m, "00280008")) || 1,
    tileW: num(tag(m, "00280011")), tileH: num(tag(m, "00280010")),
    width: num(tag(m, "00480006")) || num(tag(m, "00280011")), height: num(tag(m, "00480007")) || num(tag(m, "00280010")),
  })).sort((a, b) => a.width - b.width);
  let level = 0;
  const stage = h("div", { class: "slide-stage", tabindex: 0, "aria-label": "Slide: drag or use the scroll bars to pan; zoom buttons change magnification" });
  const levelSel = select({ name: "level" }, levels.map((l, i) => [i, `Level ${i + 1}: ${l.width}×${l.height} (${l.frames} tile${l.frames === 1 ? "" : "s"})`]), 0);
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting || e.target.dataset.loaded) continue;
      e.target.dataset.loaded = "1";
      cache.get(e.target.dataset.path).then((u) => { e.target.src = u; }, () => { e.target.classList.add("tile-failed"); });
    }
  }, { root: stage, rootMargin: "256px" });
  onCleanup(() => observer.disconnect());

  function draw(keepCentre) {
    const l = levels[level];
    const prev = keepCentre ? { x: (stage.scrollLeft + stage.clientWidth / 2) / keepCentre.width, y: (stage.scrollTop + stage.clientHeight / 2) / keepCentre.height } : null;
    observer.disconnect();
    const across = Math.ceil(l.width / l.tileW);
    const canvas = h("div", { class: "slide-canvas", style: { width: `${l.width}px`, height: `${l.height}px` } });
    for (let i = 0; i < l.frames; i += 1) {
      const tile = h("img", { class: "slide-tile", alt: "", draggable: "false", style: {
        left: `${(i % across) * l.tileW}px`, top: `${Math.floor(i / across) * l.tileH}px`, width: `${l.tileW}px`, height: `${l.tileH}px` } });
      tile.dataset.path = renderedPath(study, series, l.sop, i + 1);
      canvas.append(tile);
      observer.observe(tile);
    }
    mount(stage, canvas);
    if (prev) {
      stage.scrollLeft = prev.x * l.width - stage.clientWidth / 2;
      stage.scrollTop = prev.y * l.height - stage.clientHeight / 2;
    }
    levelSel.value = String(level);
  }
  const zoomTo = (next) => {
    if (next < 0 || next >= levels.length || next === level) return;
    const before = levels[level];
    level = next;
    draw(before);
  };
  levelSel.addEventListener("change", () => zoomTo(Number(levelSel.value)));
  let pan = null;
  stage.addEventListener("pointerdown", (ev) => { pan = { x: ev.clientX, y: ev.clientY, left: stage.scrollLeft, top: stage.scrollTop }; stage.setPointerCapture(ev.pointerId); });
  stage.addEventListener("pointermove", (ev) => { if (pan) { stage.scrollLeft = pan.left - (ev.clientX - pan.x); stage.scrollTop = pan.top - (ev.clientY - pan.y); } });
  stage.addEventListener("pointerup", () => { pan = null; });
  stage.addEventListener("keydown", (ev) => {
    if (ev.key === "+" || ev.key === "=") zoomTo(level + 1);
    if (ev.key === "-") zoomTo(level - 1);
  });
  queueMicrotask(() => draw(null));
  return h("div", { class: "viewer" },
    h("div", { class: "viewer-toolbar" }, field("Magnification 放大倍率", levelSel),
      h("div", { class: "zoom-buttons", role: "group", "aria-label": "Zoom" },
        h("button", { type: "button", class: "btn btn-sm", "aria-label": "Zoom out", onclick: () => zoomTo(level - 1) }, "−"),
        h("button", { type: "button", class: "btn btn-sm", "aria-label": "Zoom in", onclick: () => zoomTo(level + 1) }, "+"))),
    stage);
}

export async function render({ root, params, query, onCleanup, isCurrent }) {
  const id = Number(params.id);
  const study = params.uid;
  mount(root, loading("Loading the study… 正在加载影像"));
  const c = await api.get(`/api/consultations/${id}`);
  const header = pageHeader(`Images · Consultation #${id}`, "影像浏览", h("a", { class: "btn", href: `#/consultations/${id}` }, "← Consultation 返回会诊"));
  if (!c.study_uids.includes(study)) {
    mount(root, header, emptyState("This study is not shared with this consultation.", "该检查未共享到本会诊"));
    return;
  }
  const series = await seriesOf(study);
  if (!isCurrent()) return;
  const cache = new ImageCache();
  onCleanup(() => cache.clear());
  const main = h("div", { class: "viewer-main" });
  const seriesUid = (s) => tag(s, "0020000E");
  const sorted = [...series].sort((a, b) => (num(tag(a, "00200011")) || 0) - (num(tag(b, "00200011")) || 0));
  let current = query.series && sorted.some((s) => seriesUid(s) === query.series) ? query.series : (sorted[0] && seriesUid(sorted[0]));
  const list = h("ul", { class: "series-list" });
  const cleanups = [];

  async function open(uid) {
    current = uid;
    for (const li of list.children) li.querySelector("button").setAttribute("aria-pressed", String(li.dataset.series === uid));
    for (const fn of cleanups.splice(0)) fn();
    mount(main, loading("Loading images… 正在加载"));
    try {
      const meta = await seriesMetadata(study, uid);
      if (!isCurrent() || current !== uid) return;
      const isSlide = meta.some((m) => tag(m, "00080016") === WSI_SOP_CLASS);
      mount(main, (isSlide ? slideViewer : stackViewer)(study, uid, meta, cache, (fn) => cleanups.push(fn)));
      const stage = main.querySelector("[tabindex='0']");
      if (stage) stage.focus({ preventScroll: true });
    } catch (err) {
      if (isCurrent()) mount(main, errorBox(err));
    }
  }
  onCleanup(() => cleanups.splice(0).forEach((fn) => fn()));

  for (const s of sorted) {
    const uid = seriesUid(s);
    const thumb = h("img", { class: "series-thumb", alt: "", width: 64, height: 64 });
    cache.get(seriesThumbnailPath(study, uid)).then((u) => { thumb.src = u; }, () => thumb.classList.add("tile-failed"));
    list.append(h("li", { dataset: { series: uid } }, h("button", { type: "button", class: "series-btn", "aria-pressed": "false", onclick: () => open(uid) },
      thumb,
      h("span", { class: "series-text" },
        h("strong", {}, `${tag(s, "00080060") || "?"} · ${tag(s, "0008103E") || "Series"}`),
        h("span", { class: "muted small" }, `${tag(s, "00201209") || "?"} image${tag(s, "00201209") === 1 ? "" : "s"}`)))));
  }

  mount(root, header,
    h("p", { class: "muted" }, patientLine(c.patient), " · ", h("code", { class: "uid" }, study)),
    series.length ? h("div", { class: "viewer-grid" },
      h("aside", { class: "panel series-panel", "aria-label": "Series 序列" }, h("h2", {}, "Series ", h("span", { class: "zh" }, "序列")), list),
      main) : emptyState("This study has no series you can see.", "无可查看的序列"));
  if (current) await open(current);
}
