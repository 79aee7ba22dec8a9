// A teaching room on the /rtc socket.io namespace (common protocol: docs/signalling.md). The
// presenter sends one stream to the server's media peer "sfu", which fans it out; a viewer
// subscribes and receives an offer from "sfu", answers it and sends no media. Both resume their
// peer id after a network drop; a viewer whose connection to "sfu" is gone subscribes again.

import { io } from "../../vendor/socket.io-client/socket.io.esm.min.js";
import { t } from "../i18n.js";

const ACK_TIMEOUT_MS = 10000;
// How long a media connection may stay "disconnected" before it is made again.
const DISCONNECTED_GRACE_MS = 5000;
const SFU = "sfu";

/** An error from an error ack, keeping the server's code for the page's wording. */
function ackError(event, ack) {
  const e = (ack && ack.error) || {};
  return Object.assign(new Error(e.message || t("call.request_failed", { event })), { code: e.code || "request_failed", details: e.details });
}

/**
 * Events (CustomEvent detail): "state" {state, error?}, "live" {live}, "viewers" {count, high, low},
 * "layer" {layer, reason}, "media" {stream}, "chat" {id, from, user_id, display_name?, text, at},
 * "answered" {id, by, at}, "closed" {}, "superseded" {} (the presenter went on air from another
 * window or device: this page no longer publishes until takeOver()).
 */
export class TeachingLink extends EventTarget {
  constructor({ sessionId, token, iceServers }) {
    super();
    this.room = `teaching:${sessionId}`;
    this.token = token;
    this.iceServers = iceServers || [];
    this.peerId = null;
    this.host = false;
    this.live = false;
    this.pc = null; // the one RTCPeerConnection to "sfu" (publishing or receiving)
    this.stream = null; // what the presenter publishes
    this.role = null; // "presenter" | "viewer", once one of publish()/watch() ran
    this.layer = "auto";
    this.closed = false;
    this.superseded = false; // another peer of the presenter took the broadcast over
    this.stalled = null; // the timer of a media connection left "disconnected"
    this.signals = Promise.resolve(); // signals from "sfu", handled one at a time in order
    this.names = new Map(); // peer_id -> display name, for questions that carry only the peer
  }

  /** The display name of a peer in the room, when known. */
  nameOf(peerId) {
    return this.names.get(peerId) || "";
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Connect and join the room; resolves with the join ack (it says host and live). */
  start() {
    const socket = io("/rtc", { path: "/socket.io", auth: { token: this.token }, transports: ["websocket", "polling"] });
    this.socket = socket;
    socket.on("connect", () => this.join());
    socket.on("connect_error", (err) => this.emit("state", { state: "error", error: err }));
    socket.on("disconnect", () => { if (!this.closed) this.emit("state", { state: "reconnecting" }); });
    socket.on("signal", (msg) => this.onSignal(msg));
    socket.on("peer-joined", (info) => this.names.set(info.peer_id, info.display_name));
    socket.on("broadcast", (msg) => { if (msg.room === this.room) this.setLive(Boolean(msg.live)); });
    socket.on("viewers", (msg) => { if (msg.room === this.room) this.emit("viewers", msg); });
    socket.on("layer", (msg) => { if (msg.room === this.room) this.emit("layer", msg); });
    socket.on("chat", (msg) => { if (!msg.room || msg.room === this.room) this.emit("chat", msg); });
    socket.on("answered", (msg) => { if (msg.room === this.room) this.emit("answered", msg); });
    // Another tab or device of the presenter publishes now: stop, and do not take it back by
    // ourselves (two tabs republishing on failure would take the broadcast from each other).
    socket.on("superseded", (msg) => { if (!msg || !msg.room || msg.room === this.room) this.onSuperseded(); });
    // The login ended (logout elsewhere, expiry) or the session was ended: stop, no reconnect.
    socket.on("session-ended", () => { this.emit("state", { state: "session_ended" }); this.close(); });
    socket.on("room-closed", () => { this.emit("closed"); this.close(); });
  }

  async request(event, payload) {
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (!ack || !ack.ok) throw ackError(event, ack);
    return ack;
  }

  async join() {
    const payload = { room: this.room };
    if (this.peerId) payload.resume = this.peerId;
    let ack;
    try {
      ack = await this.request("join", payload);
    } catch (err) {
      if (err.code === "room_closed") { this.emit("closed"); this.close(); return; }
      this.emit("state", { state: "error", error: err });
      return;
    }
    const resumed = Boolean(ack.resumed) && ack.peer_id === this.peerId;
    this.peerId = ack.peer_id;
    this.host = Boolean(ack.host);
    for (const info of ack.peers || []) this.names.set(info.peer_id, info.display_name);
    this.emit("state", { state: "joined", host: this.host, resumed });
    const connected = this.pc && ["connected", "connecting", "new"].includes(this.pc.connectionState);
    if (this.role === "presenter" && this.stream && !this.superseded && !(resumed && connected)) {
      this.publish(this.stream).catch((err) => this.emit("state", { state: "error", error: err }));
    }
    this.setLive(Boolean(ack.live), { rejoined: !(resumed && connected) });
  }

  /** The broadcast started or stopped; a viewer subscribes while it is live. */
  setLive(live, { rejoined = false } = {}) {
    const changed = live !== this.live;
    this.live = live;
    if (changed || rejoined) this.emit("live", { live });
    if (this.role !== "viewer") return;
    if (!live) this.dropPeer();
    else if (changed || rejoined || !this.pc) this.subscribe().catch((err) => this.emit("state", { state: "error", error: err }));
  }

  newPeer() {
    this.dropPeer();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.pc === pc) this.send({ candidate: candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      this.emit("peer-state", { state: pc.connectionState });
      clearTimeout(this.stalled);
      if (pc.connectionState === "failed") this.reconnectMedia();
      // "disconnected" that lasts: the server may have given this connection up (its consent
      // checks went unanswered), and the browser would call it failed only ~30 s later.
      if (pc.connectionState === "disconnected") {
        this.stalled = setTimeout(() => { if (this.pc === pc && pc.connectionState === "disconnected") this.reconnectMedia(); }, DISCONNECTED_GRACE_MS);
      }
    };
    return pc;
  }

  /** The path to "sfu" is gone: a viewer asks for a fresh offer; the presenter publishes again. */
  reconnectMedia() {
    if (this.closed || !this.socket || !this.socket.connected) return;
    if (this.role === "viewer" && this.live) this.subscribe().catch(() => {});
    if (this.role === "presenter" && this.stream && !this.superseded) this.publish(this.stream).catch(() => {});
  }

  dropPeer() {
    clearTimeout(this.stalled);
    if (!this.pc) return;
    this.pc.close();
    this.pc = null;
  }

  send(payload) {
    if (this.socket && this.socket.connected) this.socket.emit("signal", { to: SFU, room: this.room, ...payload });
  }

  // ----- presenter -----

  /** Publish the camera (and microphone) to "sfu"; resolves once the answer is applied. */
  async publish(stream) {
    this.superseded = false;
    this.role = "presenter";
    this.stream = stream;
    const pc = this.newPeer();
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    this.emit("state", { state: "publishing" });
    await this.request("signal", { to: SFU, room: this.room, description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
  }

  /** This page is no longer the presenter's current peer: stop publishing (the camera stays). */
  onSuperseded() {
    if (this.superseded || this.closed) return;
    this.superseded = true;
    this.dropPeer();
    this.emit("superseded");
  }

  /** Publish again from this page after another window or device took the broadcast over. */
  async takeOver() {
    this.superseded = false;
    await this.publish(this.stream);
  }

  /** Replace the video being sent (a screen share, or the camera again) without renegotiating. */
  async replaceVideo(track) {
    const sender = this.pc && this.pc.getSenders().find((s) => s.track && s.track.kind === "video");
    if (!sender) throw new Error(t("teaching.not_live"));
    await sender.replaceTrack(track);
  }

  async markAnswered(id) {
    return this.request("answered", { room: this.room, id });
  }

  // ----- viewer -----

  /** Watch: subscribe now if live, and whenever the broadcast (re)starts. */
  watch(layer = "auto") {
    this.role = "viewer";
    this.layer = layer;
    if (this.live) this.subscribe().catch((err) => this.emit("state", { state: "error", error: err }));
  }

  async subscribe() {
    this.dropPeer();
    this.emit("state", { state: "receiving" });
    const ack = await this.request("subscribe", { room: this.room, layer: this.layer });
    this.emit("layer", { layer: ack.layer, reason: "chosen" });
    return ack;
  }

  /** Choose a layer ("auto", "high" or "low"); resolves with the layer sent now. */
  async setLayer(layer) {
    this.layer = layer;
    if (!this.live || !this.pc) return layer;
    const ack = await this.request("layer", { room: this.room, layer });
    this.emit("layer", { layer: ack.layer, reason: "chosen" });
    return ack.layer;
  }

  onSignal(msg) {
    if (msg.from !== SFU) return;
    this.signals = this.signals.then(() => this.handleSignal(msg)).catch((err) => {
      this.emit("state", { state: "error", error: err });
    });
  }

  async handleSignal({ description, candidate }) {
    if (description && description.type === "offer") {
      // A fresh offer from "sfu" for this viewer: a new connection answers it.
      const pc = this.newPeer();
      pc.ontrack = ({ streams, track }) => {
        const stream = streams[0] || new MediaStream([track]);
        this.emit("media", { stream });
      };
      await pc.setRemoteDescription(description);
      await pc.setLocalDescription(await pc.createAnswer());
      this.send({ description: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } });
    } else if (description && this.pc) {
      await this.pc.setRemoteDescription(description);
      this.emit("state", { state: "on_air" });
    } else if (candidate !== undefined && this.pc) {
      await this.pc.addIceCandidate(candidate || undefined).catch(() => {});
    }
  }

  async ask(text) {
    return this.request("chat", { room: this.room, text });
  }

  /** Leave the room and close the media connection (the camera is the page's to stop). */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.dropPeer();
    if (this.socket) {
      if (this.socket.connected) this.socket.emit("leave", { room: this.room });
      this.socket.disconnect();
    }
  }
}

/** The presenter's camera and microphone (camera only, then microphone only, as fallbacks). */
export async function openCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return { stream: null, notice: t("teaching.no_camera", { reason: "getUserMedia" }) };
  const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  let failure = null;
  for (const constraints of [{ audio: true, video }, { video }]) {
    try {
      return { stream: await navigator.mediaDevices.getUserMedia(constraints), notice: null };
    } catch (err) {
      failure = err;
    }
  }
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: true }), notice: t("teaching.mic_only", { reason: failure.name }) };
  } catch (err) {
    return { stream: null, notice: t("teaching.no_camera", { reason: err.name }) };
  }
}
