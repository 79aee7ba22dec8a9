// The broadcast area of a teaching session: the presenter's (camera preview, start, screen
// share, end, live viewer count) and the viewer's (the video, muted until the viewer unmutes,
// the layer choice and the layer in use, "waiting for the presenter" while not live).

import { h, mount } from "../dom.js";
import { fmtDateTime } from "../format.js";
import { errorMessage, t } from "../i18n.js";
import { toast } from "../ui/components.js";

const LAYERS = ["auto", "high", "low"];

function stateLine() {
  return h("p", { class: "teach-state", role: "status", "aria-live": "polite" });
}

/** Show a link state in the status line (data-state is what tests and styles read). */
function showState(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

function linkStateText(detail) {
  if (detail.state === "error") return t("teaching.state_error", { reason: errorMessage(detail.error) });
  if (detail.state === "session_ended") return t("teaching.state_session_ended");
  if (detail.state === "reconnecting") return t("teaching.state_reconnecting");
  return null;
}

/**
 * The presenter's stage. `onStart` makes the session live (POST start) and resolves; `onEnd`
 * ends it (after a confirmation, the page's concern).
 */
export function presenterStage({ link, camera, session, onStart, onEnd }) {
  const state = stateLine();
  const preview = h("video", { class: "teach-preview", autoplay: true, playsinline: true, muted: true, "aria-label": t("teaching.preview") });
  preview.muted = true;
  if (camera.stream) preview.srcObject = camera.stream;
  const count = h("p", { class: "teach-viewers", dataset: { count: session.viewers_now || 0 } }, t("teaching.viewers", { n: session.viewers_now || 0 }));
  const layers = h("span", { class: "muted small teach-viewer-layers" });
  const hasVideo = Boolean(camera.stream && camera.stream.getVideoTracks().length);

  const start = h("button", { type: "button", class: "btn btn-primary btn-lg", disabled: !camera.stream, dataset: { action: "start" } }, t("teaching.start"));
  // Before the start window the server refuses; say when it opens (the button still asks it).
  const early = session.status === "scheduled" && session.can && !session.can.start
    ? h("p", { class: "alert alert-info teach-early" }, t("teaching.not_started_yet", { time: fmtDateTime(session.start) })) : null;
  const end = h("button", { type: "button", class: "btn btn-danger", dataset: { action: "end" } }, t(session.status === "live" ? "teaching.end" : "teaching.end_scheduled"));
  const share = h("button", { type: "button", class: "btn", hidden: true, disabled: !hasVideo || !navigator.mediaDevices?.getDisplayMedia, dataset: { action: "share" } }, t("teaching.share_screen"));
  let screen = null;
  let disposed = false;

  const onAir = (live) => {
    start.hidden = live;
    share.hidden = !live || link.superseded;
    end.textContent = t(live ? "teaching.end" : "teaching.end_scheduled");
  };
  onAir(session.status === "live");

  start.addEventListener("click", async () => {
    start.disabled = true;
    try {
      await onStart();
      showState(state, "publishing", t("teaching.state_publishing"));
      await link.publish(camera.stream);
      onAir(true);
      if (early) early.remove();
    } catch (err) {
      toast(errorMessage(err), "error");
      showState(state, "ready", t("teaching.state_ready"));
      start.disabled = false;
    }
  });
  end.addEventListener("click", onEnd);

  /** Stop the screen capture (the browser's "sharing" bar goes) and show the camera again. */
  const dropScreen = () => {
    if (!screen) return false;
    const s = screen;
    screen = null;
    s.getTracks().forEach((tr) => tr.stop());
    preview.srcObject = camera.stream;
    share.textContent = t("teaching.share_screen");
    share.setAttribute("aria-pressed", "false");
    return true;
  };
  const stopShare = async () => {
    if (!dropScreen() || !link.pc) return;
    try { await link.replaceVideo(camera.stream.getVideoTracks()[0]); } catch (err) { toast(errorMessage(err), "error"); }
  };
  share.addEventListener("click", async () => {
    if (screen) { await stopShare(); return; }
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: false });
      if (disposed) throw new Error("disposed"); // the page was left while the browser asked
      const track = screen.getVideoTracks()[0];
      track.addEventListener("ended", stopShare); // the browser's own "stop sharing"
      await link.replaceVideo(track);
      preview.srcObject = screen;
      share.textContent = t("teaching.stop_share");
      share.setAttribute("aria-pressed", "true");
    } catch (err) {
      if (screen) screen.getTracks().forEach((tr) => tr.stop());
      screen = null;
      if (disposed) return;
      toast(t("teaching.share_failed", { reason: err.name || err.message }), "error");
    }
  });

  // Another window or device of the presenter is on air now: this page stops (no screen share
  // left running) and offers to take the broadcast back.
  const takeOver = h("button", { type: "button", class: "btn btn-primary", dataset: { action: "take-over" } }, t("teaching.take_over"));
  const supersededNote = h("div", { class: "alert alert-warn teach-superseded", role: "status", hidden: true },
    h("p", {}, t("teaching.superseded")), takeOver);
  link.addEventListener("superseded", () => {
    dropScreen();
    share.hidden = true;
    supersededNote.hidden = false;
    showState(state, "superseded", t("teaching.superseded"));
  });
  takeOver.addEventListener("click", async () => {
    takeOver.disabled = true;
    try {
      showState(state, "publishing", t("teaching.state_publishing"));
      await link.takeOver();
      supersededNote.hidden = true;
      onAir(true);
    } catch (err) {
      toast(errorMessage(err), "error");
    } finally {
      takeOver.disabled = false;
    }
  });

  link.addEventListener("viewers", ({ detail }) => {
    count.dataset.count = detail.count;
    count.textContent = t("teaching.viewers", { n: detail.count });
    layers.textContent = detail.high !== undefined ? t("teaching.viewers_layers", { high: detail.high, low: detail.low }) : "";
  });
  link.addEventListener("state", ({ detail }) => {
    const text = linkStateText(detail);
    if (text) showState(state, detail.state, text);
    else if (detail.state === "joined" && !link.stream) showState(state, "ready", session.status === "live" ? t("teaching.state_publishing") : t("teaching.state_ready"));
    else if (detail.state === "publishing") showState(state, "publishing", t("teaching.state_publishing"));
  });
  link.addEventListener("live", ({ detail }) => {
    if (detail.live) showState(state, "live", t("teaching.state_live"));
    onAir(detail.live || link.role === "presenter");
  });
  // "On air" is the server's word (broadcast live: the presenter's media reached the relay),
  // not this page's connection state.
  showState(state, "connecting", t("teaching.state_connecting"));

  const el = h("section", { class: "panel teach-stage teach-stage-presenter", "aria-labelledby": "teach-stage-title" },
    h("h2", { id: "teach-stage-title" }, t("teaching.stage")),
    camera.notice ? h("div", { class: "alert alert-warn", role: "status" }, camera.notice) : null,
    early,
    supersededNote,
    state,
    h("div", { class: "teach-video-box" }, preview),
    h("div", { class: "teach-live-bar" }, count, layers),
    h("div", { class: "call-controls", role: "toolbar", "aria-label": t("teaching.stage") }, start, share, end));
  /** The page is left: stop the screen share and the camera (no capture outlives the page). */
  const dispose = () => {
    disposed = true;
    dropScreen();
    preview.srcObject = null;
    if (camera.stream) camera.stream.getTracks().forEach((tr) => tr.stop());
  };
  return { el, stopShare, dispose };
}

/** The viewer's stage: the broadcast video, "waiting" while not live, unmute and the layer. */
export function viewerStage({ link, session }) {
  const state = stateLine();
  const video = h("video", { class: "teach-video", autoplay: true, playsinline: true, muted: true, "aria-label": t("teaching.video_label") });
  video.muted = true; // autoplay is allowed muted; the viewer unmutes with a click
  const waiting = h("div", { class: "teach-waiting" }, h("p", {}, t("teaching.state_waiting")));
  const unmute = h("button", { type: "button", class: "btn", "aria-pressed": "false", dataset: { action: "unmute" } }, t("teaching.unmute"));
  unmute.addEventListener("click", () => {
    video.muted = !video.muted;
    unmute.setAttribute("aria-pressed", String(!video.muted));
    unmute.textContent = t(video.muted ? "teaching.unmute" : "teaching.mute");
    if (!video.muted) video.play().catch(() => {});
  });
  const layerSel = h("select", { name: "layer", id: "teach-layer" }, LAYERS.map((l) => h("option", { value: l }, t(`teaching.layer_${l}`))));
  const inUse = h("span", { class: "teach-layer-now muted small", dataset: { layer: "" } });
  layerSel.addEventListener("change", async () => {
    try {
      await link.setLayer(layerSel.value);
    } catch (err) {
      toast(errorMessage(err), "error");
    }
  });
  link.addEventListener("layer", ({ detail }) => {
    inUse.dataset.layer = detail.layer;
    inUse.textContent = t("teaching.layer_in_use", { layer: t(`teaching.layer_${detail.layer}`) });
    if (detail.reason === "auto" && layerSel.value === "auto") toast(t("teaching.layer_moved", { layer: t(`teaching.layer_${detail.layer}`) }));
  });
  link.addEventListener("media", ({ detail }) => {
    if (video.srcObject !== detail.stream) video.srcObject = detail.stream;
    video.play().catch(() => {});
  });
  const setWaiting = (live) => {
    waiting.hidden = live;
    video.hidden = !live;
    if (!live) {
      video.srcObject = null;
      showState(state, "waiting", t("teaching.state_waiting"));
    }
  };
  link.addEventListener("live", ({ detail }) => setWaiting(detail.live));
  link.addEventListener("state", ({ detail }) => {
    const text = linkStateText(detail);
    if (text) showState(state, detail.state, text);
    else if (detail.state === "receiving") showState(state, "receiving", t("teaching.state_receiving"));
  });
  link.addEventListener("peer-state", ({ detail }) => {
    if (detail.state === "connected") showState(state, "watching", t("teaching.state_watching"));
  });
  setWaiting(session.status === "live");
  showState(state, "connecting", t("teaching.state_connecting"));
  const el = h("section", { class: "panel teach-stage teach-stage-viewer", "aria-labelledby": "teach-stage-title" },
    h("h2", { id: "teach-stage-title" }, t("teaching.stage")),
    state,
    h("div", { class: "teach-video-box" }, video, waiting),
    h("div", { class: "call-controls teach-viewer-controls", role: "toolbar", "aria-label": t("teaching.stage") },
      unmute,
      h("span", { class: "field inline-field" }, h("label", { htmlFor: layerSel.id }, t("teaching.layer")), layerSel),
      inUse));
  return { el, layerSel, clear: () => mount(inUse) };
}
