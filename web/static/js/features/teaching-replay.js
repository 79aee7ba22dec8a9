// The replay of an ended session: each recording as a <video> on its signed, short-lived link
// (the browser fetches it with range requests and sends no bearer header).

import { h } from "../dom.js";
import { fmtDateTimeYear } from "../format.js";
import { t } from "../i18n.js";

function duration(sec) {
  const total = Math.round(Number(sec) || 0);
  return t("teaching.duration_min", { m: Math.floor(total / 60), s: total % 60 });
}

const size = (bytes) => t("teaching.size_mb", { n: ((Number(bytes) || 0) / 1048576).toFixed(1) });

export function replayPanel(s) {
  const recordings = (s.recordings || []).slice().sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)));
  // A recording still being written, or one that failed, has nothing to play yet.
  const ready = recordings.filter((r) => r.url && !["recording", "writing", "pending", "failed"].includes(r.status));
  const pending = recordings.some((r) => !ready.includes(r) && r.status !== "failed");
  let body;
  if (ready.length) {
    body = ready.map((r, i) => h("figure", { class: "teach-replay", dataset: { recording: r.id } },
      h("video", { controls: true, preload: "metadata", playsinline: true, src: r.url, "aria-label": t("teaching.replay_part", { n: i + 1, duration: duration(r.duration_s), size: size(r.bytes) }) }),
      h("figcaption", { class: "muted small" },
        t("teaching.replay_part", { n: i + 1, duration: duration(r.duration_s), size: size(r.bytes) }),
        r.started_at ? ` · ${fmtDateTimeYear(r.started_at)}` : "")));
  } else {
    body = h("p", { class: "muted" }, t(pending ? "teaching.replay_pending" : "teaching.replay_none"));
  }
  return h("section", { class: "panel teach-replay-panel", id: "replay", "aria-labelledby": "teach-replay-title" },
    h("h2", { id: "teach-replay-title" }, t("teaching.replay_title")), body);
}
