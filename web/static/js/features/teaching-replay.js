// The replay of an ended session: each recording as a <video> on its signed, short-lived link
// (the browser fetches it with range requests and sends no bearer header).

import { api } from "../api.js";
import { h } from "../dom.js";
import { fmtDateTimeYear } from "../format.js";
import { t } from "../i18n.js";

function duration(sec) {
  const total = Math.round(Number(sec) || 0);
  return t("teaching.duration_min", { m: Math.floor(total / 60), s: total % 60 });
}

const size = (bytes) => t("teaching.size_mb", { n: ((Number(bytes) || 0) / 1048576).toFixed(1) });

/**
 * A signed link lives 2 hours: a replay paused longer fails on its next range request. On the
 * video's error, fetch the session again for a fresh link and go on at the same moment. Once
 * per error: after a refresh, another one only once the media loaded again (no loop).
 */
function refreshOnError(video, sessionId, recordingId) {
  let armed = true;
  video.addEventListener("loadedmetadata", () => { armed = true; });
  video.addEventListener("error", async () => {
    if (!armed) return;
    armed = false;
    const at = video.currentTime || 0;
    const resume = !video.paused;
    let fresh;
    try {
      const now = await api.get(`/api/teaching-sessions/${sessionId}`);
      fresh = (now.recordings || []).find((r) => r.id === recordingId);
    } catch {
      return; // the browser's own error stays on the video
    }
    if (!fresh || !fresh.url || !video.isConnected) return;
    video.addEventListener("loadedmetadata", () => {
      if (at) video.currentTime = at;
      if (resume) video.play().catch(() => {});
    }, { once: true });
    video.src = fresh.url;
    video.load();
  });
}

function replayVideo(s, r, label) {
  const video = h("video", { controls: true, preload: "metadata", playsinline: true, src: r.url, "aria-label": label });
  refreshOnError(video, s.id, r.id);
  return video;
}

export function replayPanel(s) {
  const recordings = (s.recordings || []).slice().sort((a, b) => String(a.started_at).localeCompare(String(b.started_at)));
  // A recording still being written, or one that failed, has nothing to play yet.
  const ready = recordings.filter((r) => r.url && !["recording", "writing", "pending", "failed"].includes(r.status));
  const pending = recordings.some((r) => !ready.includes(r) && r.status !== "failed");
  let body;
  if (ready.length) {
    body = ready.map((r, i) => h("figure", { class: "teach-replay", dataset: { recording: r.id } },
      replayVideo(s, r, t("teaching.replay_part", { n: i + 1, duration: duration(r.duration_s), size: size(r.bytes) })),
      h("figcaption", { class: "muted small" },
        t("teaching.replay_part", { n: i + 1, duration: duration(r.duration_s), size: size(r.bytes) }),
        r.started_at ? ` · ${fmtDateTimeYear(r.started_at)}` : "")));
  } else {
    body = h("p", { class: "muted" }, t(pending ? "teaching.replay_pending" : "teaching.replay_none"));
  }
  return h("section", { class: "panel teach-replay-panel", id: "replay", "aria-labelledby": "teach-replay-title" },
    h("h2", { id: "teach-replay-title" }, t("teaching.replay_title")), body);
}
