// A small-group video call over the /rtc signalling namespace: one RTCPeerConnection per remote
// peer, negotiated with the perfect-negotiation pattern (the server says who is polite), resumed
// with the same peer id after a network drop, with an ICE restart when a path fails.

import { io } from "../../vendor/socket.io-client/socket.io.esm.min.js";
import { errorMessage, t } from "../i18n.js";

const ACK_TIMEOUT_MS = 10000;

export class Call extends EventTarget {
  constructor({ room, token, iceServers, localStream }) {
    super();
    this.room = room;
    this.token = token;
    this.iceServers = iceServers || [];
    this.localStream = localStream;
    this.peers = new Map(); // peer_id -> {info, pc, polite, makingOffer, ignoreOffer, queue, stream}
    this.peerId = null;
    this.host = false;
    this.waiting = false;
    this.closed = false;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Connect to the signalling server and join the room. */
  start() {
    const socket = io("/rtc", { path: "/socket.io", auth: { token: this.token }, transports: ["websocket", "polling"] });
    this.socket = socket;
    socket.on("connect", () => this.join());
    socket.on("connect_error", (err) => this.emit("state", { state: "error", message: err.message === "unauthorized" ? t("call.err_unauthorized") : t("call.err_unreachable", { reason: err.message }) }));
    socket.on("disconnect", (reason) => {
      if (!this.closed) this.emit("state", { state: "reconnecting", message: t("call.reconnecting", { reason }) });
    });
    socket.on("peer-joined", (info) => this.addPeer(info));
    socket.on("peer-left", ({ peer_id: id }) => this.removePeer(id));
    socket.on("signal", (msg) => this.onSignal(msg));
    socket.on("chat", (msg) => this.emit("chat", msg));
    socket.on("lobby-waiting", (info) => this.emit("lobby", { op: "add", info }));
    socket.on("lobby-left", ({ peer_id: id }) => this.emit("lobby", { op: "remove", id }));
    socket.on("admitted", ({ peers }) => {
      this.waiting = false;
      // Let in from the lobby, this page is the newcomer towards everyone in the room (they
      // are told "polite: false" in peer-joined), whatever the order of joining was.
      for (const info of peers) this.addPeer({ ...info, polite: true });
      this.emit("state", { state: "joined" });
    });
    socket.on("refused", () => {
      this.emit("state", { state: "refused", message: t("call.refused") });
      this.hangup();
    });
    // The server ends the socket when the login ends (logout elsewhere, expiry, deactivation)
    // and closes the room when the consultation is no longer open: stop, do not reconnect.
    socket.on("session-ended", () => {
      this.emit("state", { state: "error", message: t("call.session_ended") });
      this.hangup();
    });
    socket.on("room-closed", () => {
      this.emit("state", { state: "refused", message: t("call.room_closed") });
      this.hangup();
    });
  }

  async request(event, payload) {
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (!ack || !ack.ok) {
      // Keep the server's error code, so the page shows its text in the user's language.
      const e = (ack && ack.error) || {};
      throw Object.assign(new Error(e.message || t("call.request_failed", { event })), { code: e.code, details: e.details });
    }
    return ack;
  }

  async join() {
    const payload = { room: this.room };
    if (this.peerId) payload.resume = this.peerId;
    let ack;
    try {
      ack = await this.request("join", payload);
    } catch (err) {
      this.emit("state", { state: "error", message: errorMessage(err) });
      return;
    }
    const resumed = Boolean(ack.resumed) && ack.peer_id === this.peerId;
    if (!resumed) for (const id of [...this.peers.keys()]) this.removePeer(id);
    this.peerId = ack.peer_id;
    this.host = Boolean(ack.host);
    this.waiting = Boolean(ack.waiting);
    if (this.host) this.emit("lobby", { op: "reset", list: ack.lobby || [] });
    if (this.waiting) {
      this.emit("state", { state: "waiting", message: t("call.waiting_admit") });
      return;
    }
    for (const info of ack.peers || []) {
      if (!this.peers.has(info.peer_id)) this.addPeer({ ...info, polite: true });
    }
    if (resumed) for (const p of this.peers.values()) p.pc.restartIce();
    this.emit("state", { state: "joined", host: this.host });
  }

  addPeer(info) {
    if (this.peers.has(info.peer_id)) this.removePeer(info.peer_id);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const p = { info, pc, polite: Boolean(info.polite), makingOffer: false, ignoreOffer: false, queue: Promise.resolve(), stream: new MediaStream() };
    this.peers.set(info.peer_id, p);
    // The newcomer (the polite side) makes the first offer; an existing member adds its media
    // when that offer arrives, so the two never start with crossing offers.
    p.mediaAdded = false;
    if (p.polite) this.addMedia(p);
    pc.onnegotiationneeded = async () => {
      try {
        p.makingOffer = true;
        await pc.setLocalDescription();
        this.send(info.peer_id, { description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
      } catch (err) {
        this.emit("warning", t("call.negotiation_failed", { name: info.display_name, reason: err.message }));
      } finally {
        p.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.send(info.peer_id, { candidate: candidate.toJSON() });
    };
    pc.ontrack = ({ track, streams }) => {
      const stream = streams[0] || p.stream;
      if (!streams[0]) p.stream.addTrack(track);
      p.stream = stream;
      this.emit("peer-media", { id: info.peer_id, stream });
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") pc.restartIce();
      this.emit("peer-state", { id: info.peer_id, state: pc.connectionState });
    };
    this.emit("peer-added", { id: info.peer_id, info });
    return p;
  }

  addMedia(p) {
    if (p.mediaAdded) return;
    p.mediaAdded = true;
    const tracks = this.localStream ? this.localStream.getTracks() : [];
    for (const track of tracks) p.pc.addTrack(track, this.localStream);
    for (const kind of ["audio", "video"]) {
      if (tracks.some((track) => track.kind === kind)) continue;
      const unused = p.pc.getTransceivers().find((tr) => tr.receiver.track.kind === kind);
      if (unused) unused.direction = "recvonly";
      else p.pc.addTransceiver(kind, { direction: "recvonly" });
    }
  }

  removePeer(id) {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    p.pc.close();
    this.emit("peer-removed", { id });
  }

  send(to, payload) {
    if (this.socket && this.socket.connected) this.socket.emit("signal", { to, ...payload });
  }

  onSignal({ from, description, candidate }) {
    const p = this.peers.get(from) || this.addPeer({ peer_id: from, display_name: t("call.participant"), polite: false });
    // Handle one message at a time per peer, in arrival order.
    p.queue = p.queue.then(() => this.handleSignal(p, from, description, candidate)).catch((err) => {
      this.emit("warning", t("call.signalling_error", { reason: err.message }));
    });
  }

  async handleSignal(p, from, description, candidate) {
    const { pc } = p;
    if (description) {
      const collision = description.type === "offer" && (p.makingOffer || pc.signalingState !== "stable");
      p.ignoreOffer = !p.polite && collision;
      if (p.ignoreOffer) return;
      await pc.setRemoteDescription(description);
      if (description.type === "offer") {
        this.addMedia(p);
        await pc.setLocalDescription();
        this.send(from, { description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
      }
    } else if (candidate !== undefined) {
      try {
        await pc.addIceCandidate(candidate || undefined);
      } catch (err) {
        if (!p.ignoreOffer) throw err;
      }
    }
  }

  async chat(text) {
    return this.request("chat", { room: this.room, text });
  }

  async setLobby(enabled) {
    return this.request("lobby", { room: this.room, enabled });
  }

  async admit(peerId) {
    return this.request("admit", { room: this.room, peer_id: peerId });
  }

  async refuse(peerId) {
    return this.request("refuse", { room: this.room, peer_id: peerId });
  }

  /** Leave the room, close every connection and release the camera. */
  hangup() {
    if (this.closed) return;
    this.closed = true;
    if (this.socket) {
      if (this.socket.connected && !this.waiting) this.socket.emit("leave", { room: this.room });
      this.socket.disconnect();
    }
    for (const id of [...this.peers.keys()]) this.removePeer(id);
    if (this.localStream) this.localStream.getTracks().forEach((track) => track.stop());
  }
}

/** Camera and microphone, falling back to microphone only, then to receiving only. */
export async function openMedia() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return { stream: null, notice: t("call.no_camera_api") };
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 1280 }, height: { ideal: 720 } } }), notice: null };
  } catch (err) {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia({ audio: true }), notice: t("call.mic_only", { reason: err.name }) };
    } catch (err2) {
      return { stream: null, notice: t("call.watch_only", { reason: err2.name }) };
    }
  }
}
