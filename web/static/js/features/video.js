// The live-video area of a consultation. The call itself runs over the signalling server
// (socket.io namespace /rtc); this panel offers "Join video" when the server provides it.

import { probe } from "../api.js";
import { h } from "../dom.js";
import { fmtDateTimeYear, fmtTime } from "../format.js";
import { t } from "../i18n.js";

const CALL_STATES = ["accepted", "in_progress"];
let rtcAvailable = null;

/** Whether this server offers live video (its ICE-server route answers). */
export async function hasVideo() {
  if (rtcAvailable === null) rtcAvailable = await probe("/api/rtc/ice-servers");
  return rtcAvailable;
}

export async function videoPanel(c, user) {
  const participant = [c.requester_id, c.expert_id].includes(user.id);
  const wantsCall = c.kind === "video" || c.kind === "outpatient";
  const available = await hasVideo();
  let body;
  if (!available) {
    body = h("p", { class: "muted" }, t("call.not_enabled"));
  } else if (!participant) {
    body = h("p", { class: "muted" }, t("call.panel_only_parties"));
  } else if (!CALL_STATES.includes(c.status)) {
    body = h("p", { class: "muted" }, c.status === "requested" ? t("call.panel_opens") : t("call.panel_ended"));
  } else {
    body = h("a", { class: "btn btn-primary", id: "join-video", href: `#/consultations/${c.id}/video` }, t("call.join"));
  }
  const chat = c.chat || [];
  const transcript = chat.length ? h("details", { class: "chat-transcript" },
    h("summary", {}, t(`call.transcript_${chat.length === 1 ? "one" : "other"}`, { n: chat.length })),
    h("ol", { class: "chat-list" }, chat.map((m) => h("li", { class: ["chat-line", m.user_id === user.id && "mine"] },
      h("div", { class: "chat-meta" }, h("strong", {}, m.user_id === user.id ? t("call.you") : m.display_name), " ",
        h("time", { datetime: m.at, title: fmtDateTimeYear(m.at) }, fmtTime(m.at))),
      h("p", { class: "prewrap" }, m.text))))) : null;
  return h("section", { class: ["panel", "video-panel", !wantsCall && "minor"], id: "video-panel", "aria-labelledby": "video-title" },
    h("h2", { id: "video-title" }, t("call.live_video")), body, transcript);
}
