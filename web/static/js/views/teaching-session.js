// One teaching session: its details and invitations; while scheduled or live, the presenter's
// stage (preview, start, screen share, end, viewer count) or the viewer's (video, layer,
// waiting), with the questions; after the end, the replay and the questions.

import { api, session as auth } from "../api.js";
import { h, mount } from "../dom.js";
import { fmtDateTimeYear } from "../format.js";
import { t } from "../i18n.js";
import { store } from "../store.js";
import { dl, errorBox, loading, pageHeader, toast } from "../ui/components.js";
import { confirmDialog } from "../ui/dialog.js";
import { TeachingLink, openCamera } from "../features/teaching-link.js";
import { questionsPanel } from "../features/teaching-questions.js";
import { presenterStage, viewerStage } from "../features/teaching-stage.js";
import { replayPanel } from "../features/teaching-replay.js";
import { invitedNames, kindBadge, kindText, teachingStatus, timeRange } from "../features/teaching-ui.js";

function detailsPanel(s) {
  const names = invitedNames(s);
  const p = s.presenter;
  return h("section", { class: "panel teach-details", "aria-labelledby": "teach-details-title" },
    h("h2", { id: "teach-details-title" }, t("teaching.details")),
    dl([
      [t("teaching.f_kind"), kindText(s.kind)],
      [t("teaching.f_status"), teachingStatus(s.status)],
      [t("teaching.f_time"), timeRange(s)],
      p ? [t("teaching.f_presenter"), p.institution_id ? `${p.display_name} · ${store.institutionName(p.institution_id)}` : p.display_name] : null,
      s.started_at ? [t("teaching.f_started"), fmtDateTimeYear(s.started_at)] : null,
      s.ended_at ? [t("teaching.f_ended"), fmtDateTimeYear(s.ended_at)] : null,
      [t("teaching.f_record"), t(s.record ? "teaching.record_yes" : "teaching.record_no")],
    ]),
    h("h3", {}, t("teaching.f_invited")),
    h("ul", { class: "teach-invited", dataset: { testid: "invited" } }, names.map((n) => h("li", {}, n))),
    s.description ? [h("h3", {}, t("teaching.description")), h("p", { class: "prewrap" }, s.description)] : null);
}

async function loadQuestions(id) {
  try {
    return await api.get(`/api/teaching-sessions/${id}/questions`);
  } catch {
    return []; // the page still works without the earlier questions
  }
}

// The room this page is in, if any: a running broadcast is not torn down to change the language.
let activeLink = null;
let redrawPage = null;

/** Called by the shell on a language change: redraw now unless a broadcast is running. */
export function onLocaleChange() {
  if (activeLink && !activeLink.closed) toast(t("common.language_later"));
  else if (redrawPage) redrawPage();
}

export async function render({ root, params, query, user, isCurrent, onCleanup, navigate }) {
  const id = Number(params.id);
  mount(root, loading());
  const s = await api.get(`/api/teaching-sessions/${id}`);
  if (!isCurrent()) return;
  const can = s.can || {};
  const redraw = () => { if (isCurrent()) navigate(window.location.hash); };
  activeLink = null;
  redrawPage = redraw;
  const mayAttendance = Boolean(can.attendance);
  const header = pageHeader(s.title,
    h("a", { class: "btn", href: "#/teaching" }, t("teaching.back")),
    can.edit && s.status === "scheduled" ? h("a", { class: "btn", href: `#/teaching/${id}/edit`, dataset: { action: "edit" } }, t("teaching.edit")) : null,
    mayAttendance ? h("a", { class: "btn", href: `#/teaching/${id}/attendance` }, t("teaching.attendance")) : null);
  const strip = h("div", { class: "summary-strip" }, teachingStatus(s.status), kindBadge(s.kind), h("span", {}, timeRange(s)));

  if (s.status === "ended") {
    const questions = await loadQuestions(id);
    if (!isCurrent()) return;
    const replay = replayPanel(s);
    mount(root, header, strip,
      h("div", { class: "detail-grid" },
        h("div", { class: "detail-main" }, replay, detailsPanel(s)),
        h("aside", { class: "detail-side" }, questionsPanel({ initial: questions, link: null, presenter: false, canAsk: false, me: user }).el)));
    if (query.replay) replay.scrollIntoView({ block: "start" });
    return;
  }

  // The presenter's page is the stage from scheduling on (can.present only says "live now").
  const presenting = Boolean(can.present || can.start || (s.presenter && s.presenter.id === user.id));
  if (!presenting && !can.watch) {
    mount(root, header, strip, h("div", { class: "detail-grid" }, h("div", { class: "detail-main" }, detailsPanel(s))));
    return;
  }
  // All settled: a camera that opened is stopped again when the ICE servers' request fails.
  const [iceResult, cameraResult, questionsResult] = await Promise.allSettled([
    api.get("/api/rtc/ice-servers"),
    presenting ? openCamera() : Promise.resolve(null),
    loadQuestions(id),
  ]);
  const camera = cameraResult.status === "fulfilled" ? cameraResult.value : null;
  const stopCamera = () => { if (camera && camera.stream) camera.stream.getTracks().forEach((tr) => tr.stop()); };
  if (!isCurrent()) { stopCamera(); return; }
  if (iceResult.status === "rejected" || cameraResult.status === "rejected") {
    stopCamera();
    throw iceResult.status === "rejected" ? iceResult.reason : cameraResult.reason;
  }
  const ice = iceResult.value;
  const questions = questionsResult.status === "fulfilled" ? questionsResult.value : [];

  /** The status badges follow the session going live without a redraw of the stage. */
  const setStatus = (status) => {
    for (const badge of root.querySelectorAll(".teach-status")) badge.replaceWith(teachingStatus(status));
    if (status !== "scheduled") root.querySelectorAll("[data-action=edit]").forEach((a) => a.remove());
  };
  const link = new TeachingLink({ sessionId: id, token: auth.token, iceServers: ice.iceServers });
  activeLink = link;
  let stage = null;
  // Leaving the page stops every capture: the screen share (the browser's "sharing" bar) and the camera.
  onCleanup(() => {
    link.close();
    if (stage && stage.dispose) stage.dispose();
    stopCamera();
    if (activeLink === link) activeLink = null;
  });
  if (presenting) {
    const onStart = async () => { await api.post(`/api/teaching-sessions/${id}/start`); setStatus("live"); };
    const onEnd = async () => {
      const done = await confirmDialog({
        title: t("teaching.confirm_end_title"), message: t("teaching.confirm_end"), submitLabel: t("teaching.end"), danger: true,
        onSubmit: () => api.post(`/api/teaching-sessions/${id}/end`),
      });
      if (!done) return;
      link.close();
      stage.dispose();
      stopCamera();
      toast(t("teaching.state_ended"));
      redraw();
    };
    stage = presenterStage({ link, camera, session: s, onStart, onEnd });
    // A presenter coming back to a live session (reload, another device) is on air again at once.
    if (s.status === "live" && camera.stream) { link.role = "presenter"; link.stream = camera.stream; }
  } else {
    stage = viewerStage({ link, session: s });
    link.watch("auto");
  }
  const qs = questionsPanel({ initial: questions, link, presenter: presenting, canAsk: !presenting, me: user });
  // The end (by the presenter or the organiser) closes the room: the page becomes the replay page.
  link.addEventListener("closed", () => { toast(t("teaching.state_ended")); redraw(); });
  link.addEventListener("live", async ({ detail }) => {
    if (detail.live) { setStatus("live"); return; }
    try {
      const now = await api.get(`/api/teaching-sessions/${id}`);
      if (now.status === "ended") { link.close(); redraw(); }
    } catch {
      // The next event or a reload shows the state; the stage already says "waiting".
    }
  });

  mount(root, header, strip,
    h("div", { class: "detail-grid teach-grid" },
      h("div", { class: "detail-main" }, stage.el, detailsPanel(s)),
      h("aside", { class: "detail-side" }, qs.el)));
  link.start();
}
