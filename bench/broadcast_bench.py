"""Broadcast benchmark: one presenter to N viewers at 640x480, 30 fps, VP8, through aiortc's
stock ``MediaRelay`` (decode once, one encoder per viewer) and through ours (``Broadcast``:
the presenter's packets forwarded to every viewer without re-encoding), in the same run.

Processes: for each (relay, N) this script starts a fresh *server* process (the server's
peers and the presenter, an aiortc peer sending a synthetic moving picture) and viewer
*worker* processes (up to 25 aiortc viewer peers each); it carries the SDP between them over
pipes. A fresh server per run keeps its CPU time and memory its own. Viewers are real
WebRTC peers (ICE, DTLS-SRTP, RTCP receiver reports) that do not decode, reassemble or
estimate: their video receiver's packet handler is replaced by a counter of complete frames
(marker bit) and keyframes (the VP8 frame tag), from the first keyframe on, so viewers
compete with the server for the CPU little more than receiving SRTP does. Both relays are
measured with the same viewers; the viewer workers' own CPU is printed too.

Figures per run, over ``--seconds`` once every viewer is connected:
- server CPU in cores: the server process's CPU time (``time.process_time``) over wall
  time: the relay, and the presenter peer packetising and sending its VP8 (encoded once
  before the runs, by :func:`encode_loop`: in real use the presenter's browser encodes, and
  encoding on the machine being measured would take CPU from the server and the viewers);
- fps each viewer receives: minimum and median over viewers;
- late joiner: one more viewer subscribes after the window; time from its subscribe
  request to its first keyframe (stock: its own encoder starts with one; ours: the request
  is relayed to the presenter);
- server memory: the process's resident set (VmRSS) at the end of the window;
- the viewer processes' own CPU: all viewer worker processes together, in cores.

The stock relay saturates the machine at a few viewers: after its first run whose median
fps falls below 10, larger counts are printed as "saturated" without running.

    python bench/broadcast_bench.py                       # 1,10,25,50,100 viewers, 10 s each
    python bench/broadcast_bench.py --viewers 1,10 --seconds 5
    python bench/broadcast_bench.py --quick               # 1 and 3 viewers, 3 s (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
WIDTH, HEIGHT, FPS = 640, 480, 30
PER_WORKER = 25
LOOP_FRAMES = 90  # three seconds of picture, looped
BITRATE = 1_000_000  # the presenter's VP8, bit/s (the relay's ceiling is 1.5 Mbit/s)
FORCE_KEYFRAME = "_RTCRtpSender__force_keyframe"  # set by aiortc on a PLI/FIR
SATURATED_FPS = 10.0
USABLE_FPS = 25.0
CONNECT_TIMEOUT = 60.0
RTP_HEADER = struct.Struct("!BBHLL")


# -- wire between the processes: one JSON object per line ----------------------------------

async def send(writer: asyncio.StreamWriter | Any, message: dict[str, Any]) -> None:
    writer.write((json.dumps(message) + "\n").encode())
    await writer.drain()


async def receive(reader: asyncio.StreamReader) -> dict[str, Any]:
    line = await reader.readline()
    if not line:
        raise ConnectionError("the other process ended")
    return json.loads(line)


async def stdio() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """This process's stdin/stdout as asyncio streams (server and worker side)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                        os.fdopen(1, "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


def rss_mb() -> float:
    """This process's resident set in MiB (/proc, no psutil)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- the server process: presenter + relay ----------------------------------------------

def make_frames(count: int = FPS) -> list[Any]:
    """A second of moving picture with texture, so VP8 spends a realistic bitrate on it."""
    import av
    import numpy as np

    rng = np.random.default_rng(7)
    texture = rng.integers(0, 255, (HEIGHT, WIDTH), dtype=np.uint8)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames = []
    for i in range(count):
        y = ((xx + yy + i * 8) % 256).astype(np.uint8) // 2 + texture // 4
        x0 = (i * 16) % (WIDTH - 120)
        y[180:300, x0:x0 + 120] = 235
        u = np.full((HEIGHT // 2, WIDTH // 2), 128 + (i % 30), np.uint8)
        v = np.full((HEIGHT // 2, WIDTH // 2), 160 - (i % 30), np.uint8)
        frame = av.VideoFrame.from_ndarray(np.concatenate([y, u.reshape(-1, WIDTH),
                                                           v.reshape(-1, WIDTH)]),
                                           format="yuv420p")
        frames.append(frame)
    return frames


def encode_loop(frames: list[Any]) -> tuple[Any, list[Any], list[Any]]:
    """The picture loop encoded once, before any run: ``(first, deltas, keyframes)``.

    ``first`` is the loop's first frame as a keyframe, ``deltas[i]`` frame ``i`` as a delta
    frame of a continuous stream (the loop encoded twice by one encoder, the second pass kept,
    so the first frame of a repeat follows the last), ``keyframes[i]`` frame ``i`` as a
    keyframe (sent when a keyframe is asked for). In real use the presenter's browser encodes;
    encoding here, on the machine being measured, would take a third of a core from the server
    and the viewers, so the presenter only packetises and sends what was encoded before."""
    from fractions import Fraction

    import av
    from av.video.frame import PictureType

    def encoder() -> Any:
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        ctx.time_base, ctx.framerate = Fraction(1, FPS), FPS
        ctx.bit_rate = BITRATE
        ctx.gop_size = 100_000  # keyframes only when asked for, as a WebRTC encoder
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        return ctx

    def encode(ctx: Any, frame: Any, pts: int, key: bool) -> Any:
        frame.pts, frame.time_base = pts, Fraction(1, FPS)
        frame.pict_type = PictureType.I if key else PictureType.NONE
        (packet,) = ctx.encode(frame)
        return packet

    stream = encoder()
    packets = [encode(stream, frames[i % len(frames)], i, i == 0)
               for i in range(2 * len(frames))]
    single = encoder()
    keyframes = [encode(single, frame, i, True) for i, frame in enumerate(frames)]
    assert packets[0].is_keyframe and not any(p.is_keyframe for p in packets[1:])
    return packets[0], packets[len(frames):], keyframes


class Presenter:
    """An aiortc peer publishing the synthetic picture from :func:`encode_loop`'s packets
    (aiortc packetises ``av.Packet``s as they are); a keyframe request (PLI/FIR from the
    relay) sends the next frame as a keyframe, as a live encoder would."""

    def __init__(self) -> None:
        import av
        from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack

        first, deltas, keyframes = encode_loop(make_frames(LOOP_FRAMES))
        self.sent = 0  # frames sent: the rate the viewers can get at most
        self.keyframes_sent = 0
        presenter = self

        class Camera(VideoStreamTrack):
            async def recv(self) -> Any:
                pts, time_base = await self.next_timestamp()
                i = presenter.sent % LOOP_FRAMES
                sender = presenter.sender
                if presenter.sent == 0:
                    encoded = first
                elif getattr(sender, FORCE_KEYFRAME, False):
                    setattr(sender, FORCE_KEYFRAME, False)
                    encoded = keyframes[i]
                else:
                    encoded = deltas[i]
                presenter.sent += 1
                presenter.keyframes_sent += encoded.is_keyframe
                packet = av.Packet(bytes(encoded))
                packet.pts, packet.time_base = pts, time_base
                return packet

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.sender = self.pc.addTrack(Camera())


class StockServer:
    """aiortc's MediaRelay: the presenter's track decoded once, re-encoded per viewer."""

    def __init__(self) -> None:
        from aiortc.contrib.media import MediaRelay

        self.relay = MediaRelay()
        self.source: Any = None
        self.presenter_pc: Any = None
        self.viewers: dict[str, Any] = {}

    async def publish(self, offer: Any) -> Any:
        from aiortc import RTCConfiguration, RTCPeerConnection

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.presenter_pc = pc
        got = asyncio.get_running_loop().create_future()

        @pc.on("track")
        def on_track(track: Any) -> None:
            if not got.done():
                got.set_result(track)

        await pc.setRemoteDescription(offer)
        await pc.setLocalDescription(await pc.createAnswer())
        self.source = await asyncio.wait_for(got, 10)
        return pc.localDescription

    async def subscribe(self, viewer_id: str) -> Any:
        from aiortc import RTCConfiguration, RTCPeerConnection

        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.viewers[viewer_id] = pc
        pc.addTrack(self.relay.subscribe(self.source))
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription

    async def accept(self, viewer_id: str, answer: Any) -> None:
        await self.viewers[viewer_id].setRemoteDescription(answer)

    def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.viewers.values()),
                             return_exceptions=True)
        if self.presenter_pc is not None:
            await self.presenter_pc.close()


class OurServer:
    """Ours: ``signaling.sfu.broadcast.Broadcast``, packets forwarded without re-encoding."""

    def __init__(self) -> None:
        from yilian.signaling.sfu.broadcast import Broadcast, BroadcastConfig

        self.broadcast = Broadcast("teaching:bench", BroadcastConfig(ice_servers=[]))

    async def publish(self, offer: Any) -> Any:
        return await self.broadcast.publish(offer)

    async def subscribe(self, viewer_id: str) -> Any:
        for _ in range(100):  # live once the presenter's first packet is in
            if self.broadcast.live:
                break
            await asyncio.sleep(0.1)
        return await self.broadcast.subscribe(viewer_id, "high")

    async def accept(self, viewer_id: str, answer: Any) -> None:
        await self.broadcast.accept(viewer_id, answer)

    def stats(self) -> dict[str, Any]:
        figures = self.broadcast.stats()
        return {k: figures[k] for k in ("forwarded", "dropped", "keyframe_requests")}

    async def close(self) -> None:
        await self.broadcast.close()


async def serve(kind: str) -> None:
    """The server process: answers subscribe/accept/measure requests on stdin."""
    from aiortc import RTCSessionDescription

    reader, writer = await stdio()
    server: StockServer | OurServer = StockServer() if kind == "stock" else OurServer()
    presenter = Presenter()
    await presenter.pc.setLocalDescription(await presenter.pc.createOffer())
    answer = await server.publish(presenter.pc.localDescription)
    await presenter.pc.setRemoteDescription(RTCSessionDescription(answer.sdp, answer.type))
    await send(writer, {"op": "ready"})
    while True:
        try:
            msg = await receive(reader)
        except ConnectionError:
            break
        op = msg["op"]
        try:
            if op == "subscribe":
                offer = await server.subscribe(msg["id"])
                await send(writer, {"op": "offer", "id": msg["id"], "sdp": offer.sdp})
            elif op == "accept":
                await server.accept(msg["id"], RTCSessionDescription(msg["sdp"], "answer"))
                await send(writer, {"op": "accepted", "id": msg["id"]})
            elif op == "measure":
                await send(writer, {"op": "measure", "wall": time.monotonic(),
                                    "cpu": time.process_time(),
                                    "sent": presenter.sent,
                                    "keyframes_sent": presenter.keyframes_sent,
                                    "rss": rss_mb(),
                                    "relay": server.stats()})
            elif op == "close":
                break
        except Exception as exc:  # a refused viewer is a figure of the run, not its end
            await send(writer, {"op": "error", "error": f"{type(exc).__name__}: {exc}"[:300]})
    await server.close()
    await presenter.pc.close()
    await send(writer, {"op": "closed"})


# -- the viewer worker process ---------------------------------------------------------

def vp8_frame_start(payload: bytes) -> tuple[bool, bool]:
    """(starts a frame, is a keyframe) from one VP8 RTP payload (RFC 7741 4.2-4.3), without
    depacketising: the descriptor's S bit and partition id, then the frame tag's P bit."""
    if not payload:
        return False, False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # not the start of partition 0
        return False, False
    pos = 1
    if first & 0x80:  # X: extension byte
        if len(payload) < 2:
            return False, False
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            pos += 2 if len(payload) > pos and payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/KEYIDX
            pos += 1
    if pos >= len(payload):
        return True, False
    return True, not payload[pos] & 0x01


class _Header:
    """The fields of an RTP header the counting and the receiver's statistics read."""

    __slots__ = ("payload_type", "marker", "sequence_number", "timestamp", "ssrc", "payload")

    def __init__(self, data: bytes) -> None:
        first, second, self.sequence_number, self.timestamp, self.ssrc = RTP_HEADER.unpack_from(
            data)
        self.marker = second >> 7
        self.payload_type = second & 0x7F
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10 and len(data) >= offset + 4:  # header extension
            offset += 4 + 4 * int.from_bytes(data[offset + 2:offset + 4], "big")
        end = len(data) - (data[-1] if first & 0x20 else 0)  # padding
        self.payload = data[offset:end]


class Viewer:
    """One aiortc viewer peer (ICE, DTLS-SRTP, RTCP receiver reports) that counts frames
    from its first keyframe on, without aiortc's receive path.

    aiortc's full receive path (a queue and a coroutine hop per datagram, header-extension
    parsing, jitter buffer, NACK generator, bandwidth estimator, decoder) cost ~0.04 core per
    viewer, which starved the server being measured on a 2-core machine. So, for this peer
    only: its ICE connection's ``data_received`` takes SRTP packets synchronously (decrypts and
    authenticates each with the connection's SRTP session, reads the header) and counts: a
    packet with the marker bit ends a frame, the first packet of a VP8 frame tells a keyframe.
    Everything else (ICE checks, DTLS, SRTCP) goes the usual way, and the receiver keeps the
    per-SSRC statistics its RTCP task sends receiver reports from, so the relay sees a live
    viewer with its loss. Until the DTLS handshake is done (and as a fallback) the video
    receiver's ``_handle_rtp_packet`` counts the same way.
    """

    def __init__(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = 0
        self.keyframes = 0
        self.packets = 0
        self.first_keyframe: float | None = None  # unix time

    def lean(self, receiver: Any) -> None:
        """Count frames for ``receiver`` instead of reassembling and decoding them."""
        from aiortc.rtcrtpreceiver import StreamStatistics
        from aiortc.rtp import is_rtcp

        streams = receiver._RTCRtpReceiver__remote_streams
        codecs = receiver._RTCRtpReceiver__codecs  # filled once the connection is up

        def count(packet: Any) -> None:
            codec = codecs.get(packet.payload_type)
            if codec is None:
                return
            stream = streams.get(packet.ssrc)
            if stream is None:
                stream = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
            stream.add(packet)  # what the receiver reports (RR) comes from here
            if codec.mimeType.lower() != "video/vp8":  # retransmissions: counted in RR only
                return
            self.packets += 1
            start, key = vp8_frame_start(packet.payload)
            if start and key:
                self.keyframes += 1
                if self.first_keyframe is None:
                    self.first_keyframe = time.time()
            if packet.marker and self.first_keyframe is not None:
                self.frames += 1

        async def handle(packet: Any, arrival_time_ms: int) -> None:
            count(packet)

        receiver._handle_rtp_packet = handle
        dtls = receiver.transport
        connection = dtls.transport._connection  # aioice
        queued = connection.data_received

        def data_received(data: bytes, component: int) -> None:
            srtp = dtls._rx_srtp
            if srtp is None or not 127 < data[0] < 192 or len(data) < 12 or is_rtcp(data):
                queued(data, component)  # ICE, DTLS, SRTCP: aiortc's own path
                return
            try:
                plain = srtp.unprotect(data)
            except Exception:  # pylibsrtp.Error: aiortc drops these too
                return
            count(_Header(plain))

        connection.data_received = data_received

    async def answer(self, sdp: str) -> str:
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "video":
                self.lean(transceiver.receiver)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp


async def work() -> None:
    """A viewer worker: answers offers, reports frame counts."""
    reader, writer = await stdio()
    viewers: dict[str, Viewer] = {}
    while True:
        try:
            msg = await receive(reader)
        except ConnectionError:
            break
        if msg["op"] == "offer":
            viewer = viewers[msg["id"]] = Viewer()
            sdp = await viewer.answer(msg["sdp"])
            await send(writer, {"op": "answer", "id": msg["id"], "sdp": sdp})
        elif msg["op"] == "counts":
            await send(writer, {"op": "counts", "at": time.monotonic(),
                                "cpu": time.process_time(), "viewers": {
                vid: {"frames": v.frames, "keyframes": v.keyframes,
                      "first": v.first_keyframe, "state": v.pc.connectionState}
                for vid, v in viewers.items()}})
        elif msg["op"] == "close":
            break
    await asyncio.gather(*(v.pc.close() for v in viewers.values()), return_exceptions=True)
    await send(writer, {"op": "closed"})


# -- the orchestrator ------------------------------------------------------------------

class Child:
    """A server or worker process of this script, spoken to over its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdout is not None and proc.stdin is not None
        self.reader, self.writer = proc.stdout, proc.stdin
        self.lock = asyncio.Lock()

    @classmethod
    async def start(cls, *args: str) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**22,
            cwd=ROOT)
        return cls(proc)

    async def ask(self, message: dict[str, Any], wait: float = CONNECT_TIMEOUT
                  ) -> dict[str, Any]:
        async with self.lock:
            await send(self.writer, message)
            return await asyncio.wait_for(receive(self.reader), wait)

    async def stop(self) -> None:
        try:
            await self.ask({"op": "close"}, 30)
        except (TimeoutError, ConnectionError, BrokenPipeError):
            pass
        try:
            await asyncio.wait_for(self.proc.wait(), 15)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def subscribe(server: Child, worker: Child, viewer_id: str) -> bool:
    """One viewer through offer and answer; False (and why, on stderr) when refused."""
    offer = await server.ask({"op": "subscribe", "id": viewer_id})
    if offer["op"] == "offer":
        answer = await worker.ask({"op": "offer", "id": viewer_id, "sdp": offer["sdp"]})
        accepted = await server.ask({"op": "accept", "id": viewer_id, "sdp": answer["sdp"]})
        if accepted["op"] == "accepted":
            return True
        offer = accepted
    print(f"viewer {viewer_id} was refused: {offer.get('error')}", file=sys.stderr)
    return False


async def counts(workers: Sequence[Child]) -> dict[str, dict[str, Any]]:
    """Every viewer's counts, each with its worker's clock (``at``) at that moment; the
    key ``""`` holds the workers' CPU time together (``cpu``)."""
    merged: dict[str, dict[str, Any]] = {"": {"cpu": 0.0}}
    for reply in await asyncio.gather(*(w.ask({"op": "counts"}) for w in workers)):
        merged[""]["cpu"] += reply["cpu"]
        for vid, seen in reply["viewers"].items():
            merged[vid] = {**seen, "at": reply["at"]}
    return merged


def load_average() -> float:
    """The machine's 1-minute load average: other work competing for the same cores."""
    return float(Path("/proc/loadavg").read_text().split()[0])


async def run(kind: str, viewers: int, seconds: float) -> dict[str, Any]:
    """One (relay, viewer count) run in fresh processes; the figures of the docstring."""
    server = await Child.start("--serve", kind)
    workers = [await Child.start("--work") for _ in range(math.ceil((viewers + 1) / PER_WORKER))]
    try:
        await asyncio.wait_for(receive(server.reader), 60)  # the presenter is publishing
        sem = asyncio.Semaphore(8)

        async def join(i: int, vid: str) -> bool:
            async with sem:
                return await subscribe(server, workers[i // PER_WORKER], vid)

        asked_ids = [f"v{i}" for i in range(viewers)]
        joined = await asyncio.gather(*(join(i, vid) for i, vid in enumerate(asked_ids)))
        ids = [vid for vid, ok in zip(asked_ids, joined, strict=True) if ok]
        if not ids:
            raise RuntimeError(f"{kind}: no viewer could subscribe")
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < deadline:  # every viewer has had its first keyframe
            seen = await counts(workers)
            if all(seen[v]["first"] is not None for v in ids):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)  # settle: bitrate ramps, queues fill
        before, c0 = await server.ask({"op": "measure"}), await counts(workers)
        await asyncio.sleep(seconds)
        after, c1 = await server.ask({"op": "measure"}), await counts(workers)
        wall = after["wall"] - before["wall"]
        # each viewer's rate over its own worker's clock, not the round trips' timing
        fps = sorted((c1[v]["frames"] - c0[v]["frames"]) / (c1[v]["at"] - c0[v]["at"])
                     for v in ids)
        cpu = (after["cpu"] - before["cpu"]) / wall
        viewer_cpu = (c1[""]["cpu"] - c0[""]["cpu"]) / wall  # all viewer workers together
        # the late joiner, on the last worker
        asked = time.time()
        first = None
        late_joined = await subscribe(server, workers[-1], "late")
        while late_joined and time.time() - asked < 10:
            late = (await workers[-1].ask({"op": "counts"}))["viewers"]["late"]
            if late["first"] is not None:
                first = late["first"] - asked
                break
            await asyncio.sleep(0.05)
        return {"kind": kind, "viewers": viewers, "cpu": cpu,
                "keyframes": after["keyframes_sent"] - before["keyframes_sent"], "viewer_cpu": viewer_cpu, "fps_min": fps[0],
                "fps_median": statistics.median(fps),
                "late": first, "rss": after["rss"], "load": load_average(),
                "joined": len(ids), "sent_fps": (after["sent"] - before["sent"]) / wall,
                "relay": after.get("relay", {})}
    finally:
        await asyncio.gather(server.stop(), *(w.stop() for w in workers))


def cell(row: dict[str, Any] | None, key: str) -> str:
    if row is None:
        return "saturated" if key == "cpu" else "-"
    value = row[key]
    if value is None:
        return "none"
    return {"cpu": "{:.2f}", "viewer_cpu": "{:.2f}", "fps_min": "{:.1f}",
            "fps_median": "{:.1f}",
            "late": "{:.2f} s", "rss": "{:.0f} MiB"}[key].format(value)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.1f}x"


def max_viewers(rows: list[dict[str, Any]], cores: float) -> int:
    """The most viewers a relay served at >= USABLE_FPS median within ``cores``."""
    return max((r["viewers"] for r in rows
                if r["cpu"] <= cores and r["fps_median"] >= USABLE_FPS), default=0)


def report(counts_: Sequence[int], stock: dict[int, dict[str, Any] | None],
           ours: dict[int, dict[str, Any]]) -> None:
    loads = [r["load"] for r in list(ours.values()) + [r for r in stock.values() if r]]
    print(f"\nbroadcast bench: {WIDTH}x{HEIGHT} {FPS} fps VP8, server cores include the "
          f"presenter's packetising and sending (its VP8 was encoded before the run); "
          f"{os.cpu_count()} cores, load average during the runs "
          f"{min(loads, default=0):.1f}-{max(loads, default=0):.1f}\n")
    head = (f"{'viewers':>7} | {'':<6} {'server cores':>12} {'fps min':>8} {'fps median':>10} "
            f"{'late joiner':>11} {'RSS':>9} {'joined':>7}")
    print(head)
    print("-" * len(head))
    for n in counts_:
        for name, row in (("stock", stock.get(n)), ("ours", ours.get(n))):
            print(f"{n:>7} | {name:<6} {cell(row, 'cpu'):>12} {cell(row, 'fps_min'):>8} "
                  f"{cell(row, 'fps_median'):>10} {cell(row, 'late'):>11} {cell(row, 'rss'):>9} "
                  f"{(str(row['joined']) + '/' + str(n)) if row else '-':>7}")
        s, o = stock.get(n), ours.get(n)
        print(f"{'':>7} | viewer processes' own CPU: stock {cell(s, 'viewer_cpu')}, "
              f"ours {cell(o, 'viewer_cpu')} cores")
        if s is not None and o is not None:
            print(f"{'':>7} | ratio  cpu stock/ours {ratio(s['cpu'], o['cpu'])}, "
                  f"fps median ours/stock {ratio(o['fps_median'], s['fps_median'])}, "
                  f"RSS stock/ours {ratio(s['rss'], o['rss'])}")
    stock_rows = [r for r in stock.values() if r is not None]
    ours_rows = list(ours.values())
    if ours_rows:
        top = max(ours_rows, key=lambda r: r["viewers"])
        budget = math.ceil(max(top["cpu"], 0.01) * 20) / 20  # ours' CPU at its most viewers
        n_ours, n_stock = max_viewers(ours_rows, budget), max_viewers(stock_rows, budget)
        n_one_s, n_one_o = max_viewers(stock_rows, 1.0), max_viewers(ours_rows, 1.0)
        print(f"max viewers at <= {budget:.2f} cores (>= {USABLE_FPS:.0f} fps median): "
              f"stock {n_stock}, ours {n_ours}" +
              (f" ({n_ours / n_stock:.0f}x)" if n_stock else
               f" (stock's fewest measured, {min(stock_rows, key=lambda r: r['viewers'])['viewers']}"
               f" viewer(s), took {min(stock_rows, key=lambda r: r['viewers'])['cpu']:.2f} cores)"
               if stock_rows else ""))
        print(f"max viewers at <= 1.00 cores (>= {USABLE_FPS:.0f} fps median): "
              f"stock {n_one_s}, ours {n_one_o}" +
              (f" ({n_one_o / n_one_s:.0f}x)" if n_one_s else ""))


async def orchestrate(counts_: Sequence[int], seconds: float,
                      relays: Sequence[str] = ("stock", "ours")) -> None:
    stock: dict[int, dict[str, Any] | None] = {}
    ours: dict[int, dict[str, Any]] = {}
    saturated = False
    for n in counts_:
        for kind in relays:
            if kind == "stock" and saturated:
                stock[n] = None
                continue
            row = await run(kind, n, seconds)
            print(f"  {kind:<5} {n:>3} viewers: {row['cpu']:.2f} cores "
                  f"(viewers {row['viewer_cpu']:.2f}), fps min "
                  f"{row['fps_min']:.1f} median {row['fps_median']:.1f}, late "
                  f"{cell(row, 'late')}, {row['rss']:.0f} MiB, {row['joined']}/{n} joined, "
                  f"presenter sent {row['sent_fps']:.1f} fps and {row['keyframes']} "
                  f"keyframes, "
                  f"load average {row['load']:.1f}"
                  + (f", relay {row['relay']}" if row["relay"] else ""), flush=True)
            if kind == "stock":
                stock[n] = row
                saturated = row["fps_median"] < SATURATED_FPS
            else:
                ours[n] = row
    report(counts_, stock, ours)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--viewers", default="1,10,25,50,100")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="1 and 3 viewers, 3 s")
    parser.add_argument("--relays", default="stock,ours",
                        help="which relays to run (e.g. ours, to profile it alone)")
    parser.add_argument("--serve", choices=("stock", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--work", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve))
    elif args.work:
        asyncio.run(work())
    else:
        counts_ = [1, 3] if args.quick else [int(n) for n in args.viewers.split(",")]
        relays = [r for r in ("stock", "ours") if r in args.relays.split(",")]
        asyncio.run(orchestrate(counts_, 3.0 if args.quick else args.seconds, relays))


if __name__ == "__main__":
    main()
