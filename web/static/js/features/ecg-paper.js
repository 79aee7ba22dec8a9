// The standard 12-lead ECG sheet drawn on a canvas, in millimetres of paper: 25 mm/s and
// 10 mm/mV, 1 mm small and 5 mm big squares, a 1 mV calibration pulse at the start of each
// row, three rows of four 2.5 s columns (I aVR V1 V4 / II aVL V2 V5 / III aVF V3 V6) and a 10 s
// lead II rhythm strip. Zoom only changes how many CSS pixels a millimetre takes, so the grid
// stays true at every zoom; the canvas is backed at the device pixel ratio for sharp lines.

export const SPEED = 25; // mm per second
export const GAIN = 10; // mm per millivolt
export const CSS_PX_PER_MM = 96 / 25.4; // a CSS pixel is 1/96 inch: the "real size" zoom
export const LAYOUT = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]];
export const RHYTHM_LEAD = "II";
const COLUMN_SECONDS = 2.5;
const CAL_MM = 10; // the calibration pulse's box at the start of each row
const ROW_MM = 30; // baseline to baseline (3 mV): big complexes may reach into the next row
const TOP_MM = 5;
const FOOT_MM = 7; // the speed and gain written under the sheet
const MAX_BACKING_PIXELS = 24e6; // a canvas larger than this is backed below the device ratio

/** The sheet's size in millimetres. */
export function paperSize() {
  const width = CAL_MM + SPEED * COLUMN_SECONDS * 4 + 2;
  const height = TOP_MM + ROW_MM * (LAYOUT.length + 1) + FOOT_MM;
  return { width, height };
}

/** The multiplex group to draw: the one holding most of the twelve leads, then the longest
 * (carts also send a median beat group of a second or so). */
export function pickGroup(groups) {
  const twelve = new Set(LAYOUT.flat());
  const score = (g) => [g.channels.filter((c) => twelve.has(c.lead)).length, g.duration];
  return [...groups].sort((a, b) => {
    const [la, da] = score(a);
    const [lb, db] = score(b);
    return lb - la || db - da;
  })[0];
}

function grid(ctx, width, height, pxPerMm) {
  ctx.fillStyle = "#fff7f7";
  ctx.fillRect(0, 0, width, height);
  const hair = 1 / pxPerMm; // one CSS pixel, in millimetres
  for (const [step, color, lineWidth] of [[1, "#f6caca", 0.6 * hair], [5, "#e58f8f", 1.1 * hair]]) {
    ctx.beginPath();
    for (let x = 0; x <= width + 1e-6; x += step) { ctx.moveTo(x, 0); ctx.lineTo(x, height); }
    for (let y = 0; y <= height + 1e-6; y += step) { ctx.moveTo(0, y); ctx.lineTo(width, y); }
    ctx.strokeStyle = color;
    ctx.lineWidth = lineWidth;
    ctx.stroke();
  }
}

function calibration(ctx, baseline) {
  // 1 mV for 0.2 s: 10 mm high, 5 mm wide, on the row's baseline.
  ctx.moveTo(1, baseline);
  ctx.lineTo(2.5, baseline);
  ctx.lineTo(2.5, baseline - GAIN);
  ctx.lineTo(2.5 + 0.2 * SPEED, baseline - GAIN);
  ctx.lineTo(2.5 + 0.2 * SPEED, baseline);
  ctx.lineTo(CAL_MM, baseline);
}

/** Trace samples [from, to) of a channel, starting at x (mm) on a baseline (mm). */
function trace(ctx, channel, rate, from, to, x, baseline) {
  const samples = channel.samples;
  const end = Math.min(to, samples.length);
  const mmPerSample = SPEED / rate;
  for (let i = from; i < end; i += 1) {
    const px = x + (i - from) * mmPerSample;
    const py = baseline - (samples[i] / 1000) * GAIN;
    if (i === from) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  }
  return end > from;
}

function label(ctx, text, x, y, size) {
  ctx.font = `600 ${size}px system-ui, "Noto Sans CJK SC", sans-serif`;
  ctx.lineWidth = size / 5;
  ctx.strokeStyle = "#fff7f7";
  ctx.strokeText(text, x, y); // a halo keeps the label readable over the grid and the trace
  ctx.fillStyle = "#1f2933";
  ctx.fillText(text, x, y);
}

/**
 * Draw a group's leads on `canvas` at `pxPerMm` CSS pixels per millimetre. Returns the leads
 * drawn (with samples) in sheet order, the rhythm strip's lead last.
 * `texts.footer` is written under the sheet ("25 mm/s  10 mm/mV").
 */
export function drawPaper(canvas, group, pxPerMm, texts) {
  const { width, height } = paperSize();
  const cssW = Math.round(width * pxPerMm);
  const cssH = Math.round(height * pxPerMm);
  let ratio = window.devicePixelRatio || 1;
  if (cssW * cssH * ratio * ratio > MAX_BACKING_PIXELS) ratio = Math.sqrt(MAX_BACKING_PIXELS / (cssW * cssH));
  canvas.width = Math.round(cssW * ratio);
  canvas.height = Math.round(cssH * ratio);
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio * pxPerMm, 0, 0, ratio * pxPerMm, 0, 0);
  grid(ctx, width, height, pxPerMm);

  const byLead = new Map(group.channels.map((c) => [c.lead, c]));
  const rate = group.sampling_frequency;
  const perColumn = Math.round(COLUMN_SECONDS * rate);
  const drawn = [];
  const labelSize = Math.max(3, 11 / pxPerMm); // at least 11 CSS px
  ctx.lineJoin = "round";
  ctx.lineCap = "round";
  const rows = [...LAYOUT.map((leads) => leads.map((lead, col) => ({ lead, col, span: 1 }))),
    [{ lead: RHYTHM_LEAD, col: 0, span: 4 }]];
  const labels = [];
  rows.forEach((cells, r) => {
    const baseline = TOP_MM + ROW_MM * (r + 0.5);
    ctx.beginPath();
    calibration(ctx, baseline);
    for (const { lead, col, span } of cells) {
      const x = CAL_MM + col * COLUMN_SECONDS * SPEED;
      const channel = byLead.get(lead);
      if (col > 0) { // the usual short mark where one lead gives way to the next
        ctx.moveTo(x, baseline - 3);
        ctx.lineTo(x, baseline + 3);
      }
      if (channel && trace(ctx, channel, rate, col * perColumn, (col + span) * perColumn, x, baseline)) drawn.push(lead);
      labels.push([lead, x + 1, baseline - ROW_MM / 2 + labelSize + 0.5]);
    }
    ctx.strokeStyle = "#111";
    ctx.lineWidth = Math.max(0.12, 1.15 / pxPerMm);
    ctx.stroke();
  });
  for (const [text, x, y] of labels) label(ctx, text, x, y, labelSize);
  label(ctx, texts.footer, 1, height - 2, Math.max(3, 11 / pxPerMm));
  return drawn;
}
