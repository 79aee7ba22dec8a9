// The video call page of a consultation: remote and local video, mic/camera controls, the
// expert's lobby, the consultation's shared studies (each opens in the OHIF reading window), and
// the room chat (kept with the consultation).

import { api, session } from "../api.js";
import { h, mount } from "../dom.js";
import { fmtDateTimeYear, fmtTime, patientLine } from "../format.js";
import { Call, openMedia } from "../features/call.js";
import { callStudies } from "../features/call-studies.js";
import { errorMessage, has, t } from "../i18n.js";
import { store } from "../store.js";
import { emptyState, kindLabel, loading, pageHeader, statusBadge, toast } from "../ui/components.js";

const OPEN_STATES = ["accepted", "in_progress"];

function chatLine(name, text, at, mine) {
  return h("li", { class: ["chat-line", mine && "mine"] },
    h("div", { class: "chat-meta" }, h("strong", {}, name), " ", h("time", { datetime: at, title: fmtDateTimeYear(at) }, fmtTime(at))),
    h("p", { class: "prewrap" }, text));
}

export async function render({ root, params, user, onCleanup, isCurrent }) {
  const id = Number(params.id);
  mount(root, loading(t("call.opening")));
  const c = await api.get(`/api/consultations/${id}`);
  const back = h("a", { class: "btn", href: `#/consultations/${id}` }, t("call.back"));
  const header = pageHeader(t("call.title", { id }), null, back);
  if (![c.requester_id, c.expert_id].includes(user.id)) {
    mount(root, header, emptyState(t("call.only_parties"), null));
    return;
  }
  if (!OPEN_STATES.includes(c.status)) {
    mount(root, header, emptyState(c.status === "requested" ? t("call.opens_on_accept") : t("call.ended"), null));
    return;
  }
  const ice = await api.get("/api/rtc/ice-servers");
  const media = await openMedia();
  if (!isCurrent()) {
    if (media.stream) media.stream.getTracks().forEach((track) => track.stop());
    return;
  }

  const call = new Call({ room: `consultation:${id}`, token: session.token, iceServers: ice.iceServers, localStream: media.stream });
  onCleanup(() => call.hangup());

  // Stage
  const stateEl = h("p", { class: "call-state", role: "status", "aria-live": "polite" }, t("call.connecting"));
  const tiles = h("div", { class: "call-tiles" });
  const alone = h("div", { class: "call-alone" }, h("p", {}, t("call.waiting_other")));
  const localVideo = h("video", { class: "local-video", autoplay: true, playsinline: true, muted: true, "aria-label": t("call.your_camera") });
  localVideo.muted = true;
  if (media.stream) localVideo.srcObject = media.stream;
  const stage = h("div", { class: "call-stage" }, tiles, alone,
    media.stream && media.stream.getVideoTracks().length ? h("div", { class: "local-tile" }, localVideo, h("span", { class: "tile-name" }, t("call.you"))) : null);
  const syncAlone = () => { alone.hidden = tiles.children.length > 0; };
  syncAlone();

  const tileFor = new Map();
  call.addEventListener("peer-added", ({ detail: { id: peerId, info } }) => {
    const video = h("video", { autoplay: true, playsinline: true, "aria-label": t("call.video_of", { name: info.display_name }) });
    const status = h("span", { class: "tile-status" }, t("call.peer_connecting"));
    const tile = h("figure", { class: "tile", dataset: { peerId } }, video, h("figcaption", { class: "tile-name" }, info.display_name, " ", status));
    tile.video = video;
    tile.status = status;
    tileFor.set(peerId, tile);
    tiles.append(tile);
    syncAlone();
  });
  call.addEventListener("peer-media", ({ detail: { id: peerId, stream } }) => {
    const tile = tileFor.get(peerId);
    if (tile && tile.video.srcObject !== stream) tile.video.srcObject = stream;
  });
  call.addEventListener("peer-state", ({ detail: { id: peerId, state } }) => {
    const tile = tileFor.get(peerId);
    if (!tile) return;
    tile.dataset.state = state;
    tile.status.textContent = state === "connected" ? ""
      : t("call.peer_state", { state: has(`call.peer_state_${state}`) ? t(`call.peer_state_${state}`) : state });
  });
  call.addEventListener("peer-removed", ({ detail: { id: peerId } }) => {
    const tile = tileFor.get(peerId);
    if (tile) tile.remove();
    tileFor.delete(peerId);
    syncAlone();
  });
  call.addEventListener("state", ({ detail }) => {
    const text = {
      joined: t("call.in_call"), waiting: detail.message, reconnecting: detail.message,
      error: detail.message, refused: detail.message,
    }[detail.state] || detail.state;
    stateEl.textContent = text;
    stateEl.dataset.state = detail.state;
    lobbyBox.hidden = !call.host;
  });
  call.addEventListener("warning", ({ detail }) => toast(detail, "error"));

  // Controls
  const toggle = (kind, onLabel, offLabel) => {
    const tracks = media.stream ? media.stream.getTracks().filter((track) => track.kind === kind) : [];
    const btn = h("button", { type: "button", class: "btn", "aria-pressed": "true", disabled: !tracks.length, dataset: { control: kind } }, onLabel);
    btn.addEventListener("click", () => {
      const on = btn.getAttribute("aria-pressed") !== "true";
      tracks.forEach((track) => { track.enabled = on; });
      btn.setAttribute("aria-pressed", String(on));
      btn.textContent = on ? onLabel : offLabel;
      btn.classList.toggle("btn-off", !on);
    });
    return btn;
  };
  const leave = h("button", { type: "button", class: "btn btn-danger", onclick: () => { call.hangup(); window.location.hash = `#/consultations/${id}`; } }, t("call.leave"));
  const controls = h("div", { class: "call-controls", role: "toolbar", "aria-label": t("call.controls") },
    toggle("audio", t("call.mute"), t("call.unmute")), toggle("video", t("call.camera_off"), t("call.camera_on")), leave);

  // Lobby (the expert hosts)
  const lobbyList = h("ul", { class: "lobby-list" });
  const lobbySwitch = h("input", { type: "checkbox", id: "lobby-switch" });
  lobbySwitch.addEventListener("change", async () => {
    try {
      await call.setLobby(lobbySwitch.checked);
    } catch (err) {
      lobbySwitch.checked = !lobbySwitch.checked;
      toast(errorMessage(err), "error");
    }
  });
  const lobbyEntries = new Map();
  const addWaiting = (info) => {
    if (lobbyEntries.has(info.peer_id)) return;
    const li = h("li", {}, h("span", {}, info.display_name),
      h("span", { class: "lobby-actions" },
        h("button", { type: "button", class: "btn btn-sm btn-primary", onclick: () => call.admit(info.peer_id).catch((e) => toast(errorMessage(e), "error")) }, t("call.admit")),
        h("button", { type: "button", class: "btn btn-sm", onclick: () => call.refuse(info.peer_id).then(() => { li.remove(); lobbyEntries.delete(info.peer_id); }).catch((e) => toast(errorMessage(e), "error")) }, t("call.refuse"))));
    lobbyEntries.set(info.peer_id, li);
    lobbyList.append(li);
  };
  call.addEventListener("lobby", ({ detail }) => {
    if (detail.op === "reset") { mount(lobbyList); lobbyEntries.clear(); detail.list.forEach(addWaiting); }
    if (detail.op === "add") addWaiting(detail.info);
    if (detail.op === "remove") { const li = lobbyEntries.get(detail.id); if (li) li.remove(); lobbyEntries.delete(detail.id); }
  });
  call.addEventListener("peer-added", ({ detail: { id: peerId } }) => {
    const li = lobbyEntries.get(peerId);
    if (li) { li.remove(); lobbyEntries.delete(peerId); }
  });
  const lobbyBox = h("section", { class: "panel", "aria-labelledby": "lobby-title", hidden: true },
    h("h2", { id: "lobby-title" }, t("call.lobby")),
    h("p", { class: "check" }, lobbySwitch, h("label", { htmlFor: "lobby-switch" }, t("call.lobby_hold"))),
    lobbyList);

  // Chat
  const names = (msg) => {
    if (msg.from === call.peerId || msg.user_id === user.id) return t("call.you");
    const p = call.peers.get(msg.from);
    return p ? p.info.display_name : store.personName(msg.user_id, c);
  };
  const chatList = h("ol", { class: "chat-list", "aria-label": t("call.messages"), "aria-live": "polite" },
    (c.chat || []).map((m) => chatLine(m.user_id === user.id ? t("call.you") : m.display_name, m.text, m.at, m.user_id === user.id)));
  const scrollChat = () => { chatList.scrollTop = chatList.scrollHeight; };
  call.addEventListener("chat", ({ detail: m }) => {
    chatList.append(chatLine(names(m), m.text, m.at, m.user_id === user.id));
    scrollChat();
  });
  const chatInput = h("input", { name: "chat", maxlength: 2000, autocomplete: "off", "aria-label": t("call.message"), placeholder: t("call.message") });
  const chatForm = h("form", { class: "chat-form" }, chatInput, h("button", { type: "submit", class: "btn" }, t("call.send")));
  chatForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = chatInput.value.trim();
    if (!text) return;
    try {
      await call.chat(text);
      chatInput.value = "";
    } catch (err) {
      toast(errorMessage(err), "error");
    }
  });

  mount(root, header,
    h("div", { class: "summary-strip" }, statusBadge(c.status), kindLabel(c.kind), h("span", {}, patientLine(c.patient))),
    media.notice ? h("div", { class: "alert alert-warn", role: "status" }, media.notice) : null,
    h("div", { class: "call-grid" },
      h("div", { class: "call-main" }, stateEl, stage, controls),
      h("aside", { class: "call-side" }, lobbyBox, callStudies(c),
        h("section", { class: "panel chat", "aria-labelledby": "chat-title" },
          h("h2", { id: "chat-title" }, t("call.chat")),
          chatList, chatForm,
          h("p", { class: "muted small" }, t("call.chat_kept"))))));
  scrollChat();
  call.start();
}
