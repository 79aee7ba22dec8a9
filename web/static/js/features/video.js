// The live-video area of a consultation. The call itself runs over the signalling server
// (socket.io namespace /rtc); this panel offers "Join video" when the server provides it.

import { probe } from "../api.js";
import { h } from "../dom.js";
import { fmtDateTimeYear, fmtTime } from "../format.js";

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
    body = h("p", { class: "muted" }, "Live video is not enabled on this server. 本服务器未启用视频。");
  } else if (!participant) {
    body = h("p", { class: "muted" }, "Only the requesting doctor and the expert join the call.");
  } else if (!CALL_STATES.includes(c.status)) {
    body = h("p", { class: "muted" }, c.status === "requested"
      ? "The call opens once the expert accepts. 专家接诊后可进入视频。"
      : "This consultation has ended; the call is closed. 会诊已结束。");
  } else {
    body = h("a", { class: "btn btn-primary", id: "join-video", href: `#/consultations/${c.id}/video` }, "Join video 加入视频");
  }
  const chat = c.chat || [];
  const transcript = chat.length ? h("details", { class: "chat-transcript" },
    h("summary", {}, `Call chat: ${chat.length} message${chat.length === 1 ? "" : "s"} 通话记录`),
    h("ol", { class: "chat-list" }, chat.map((m) => h("li", { class: ["chat-line", m.user_id === user.id && "mine"] },
      h("div", { class: "chat-meta" }, h("strong", {}, m.user_id === user.id ? "You 我" : m.display_name), " ",
        h("time", { datetime: m.at, title: fmtDateTimeYear(m.at) }, fmtTime(m.at))),
      h("p", { class: "prewrap" }, m.text))))) : null;
  return h("section", { class: ["panel", "video-panel", !wantsCall && "minor"], id: "video-panel", "aria-labelledby": "video-title" },
    h("h2", { id: "video-title" }, "Live video ", h("span", { class: "zh" }, "视频会诊")), body, transcript);
}
