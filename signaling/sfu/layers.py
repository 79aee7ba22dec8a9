"""The video layers of a broadcast and which one each viewer gets.

``high`` is the presenter's own video; ``low`` (``lowlayer.LowLayer``) is made in the server
and runs only while some viewer is on it. A viewer picks ``high`` or ``low``, or ``auto``: then
:func:`judge`, run once per ``auto_interval``, moves it down after ``auto_down_after`` bad
checks in a row (loss at or over ``auto_loss_down``, its REMB under 80 % of the stream's rate,
or its queue overflowing) and back up after ``auto_up_after`` good ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from yilian.signaling.errors import InvalidPayload
from yilian.signaling.sfu.forward import PacketHub
from yilian.signaling.sfu.lowlayer import LowLayer
from yilian.signaling.sfu.viewer import Viewer

LAYERS = ("auto", "high", "low")

#: A viewer whose REMB is under this share of the stream's measured rate is starved.
STARVED_SHARE = 0.8


def check_layer(layer: Any) -> str:
    """``layer`` if it is one of :data:`LAYERS`, else ``InvalidPayload``."""
    if layer not in LAYERS:
        raise InvalidPayload(f'"layer" must be one of {list(LAYERS)}')
    return str(layer)


def initial_layer(choice: str, low_available: bool) -> str:
    """The layer a viewer starts on (``auto`` starts high)."""
    return "low" if choice == "low" and low_available else "high"


class AutoPolicy(Protocol):
    """The auto layer's thresholds (``BroadcastConfig``)."""

    @property
    def auto_down_after(self) -> int: ...

    @property
    def auto_up_after(self) -> int: ...

    @property
    def auto_loss_down(self) -> float: ...

    @property
    def auto_loss_up(self) -> float: ...


def judge(viewer: Viewer, policy: AutoPolicy, rate: float) -> str | None:
    """One check of an ``auto`` viewer against the stream's bit/s ``rate``: the layer to move
    it to, or ``None`` to leave it where it is."""
    overflowed = viewer.video.overflows > viewer.overflows_seen
    viewer.overflows_seen = viewer.video.overflows
    starved = viewer.remb is not None and rate > 0 and viewer.remb < STARVED_SHARE * rate
    if viewer.layer == "high":
        bad = overflowed or viewer.loss >= policy.auto_loss_down or starved
        viewer.bad = viewer.bad + 1 if bad else 0
        return "low" if viewer.bad >= policy.auto_down_after else None
    good = not overflowed and viewer.loss <= policy.auto_loss_up and not starved
    viewer.good = viewer.good + 1 if good else 0
    return "high" if viewer.good >= policy.auto_up_after else None


class Layers:
    """Attaches viewers' video to the high hub or the low layer, which is started on its
    first viewer and stopped (:meth:`release`) once it has none."""

    def __init__(self, high: PacketHub, low_bitrate: int,
                 want_keyframe: Callable[[], None]) -> None:
        self.high = high
        self.low: LowLayer | None = None
        self._low_bitrate = low_bitrate
        self._want_keyframe = want_keyframe

    def attach(self, viewer: Viewer, layer: str, codec: RTCRtpCodecParameters | None) -> None:
        """Put ``viewer`` on ``layer`` (``codec``: the presenter's, which the low layer
        encodes in); the auto layer's counters start over."""
        if layer == "low":
            viewer.video.attach(self._low_layer(codec).hub)
        else:
            viewer.video.attach(self.high)
        viewer.layer = layer
        viewer.bad = viewer.good = 0
        viewer.overflows_seen = viewer.video.overflows

    def _low_layer(self, codec: RTCRtpCodecParameters | None) -> LowLayer:
        if self.low is None:
            if codec is None:
                raise RuntimeError("the low layer needs the presenter's video codec")
            self.low = LowLayer(codec, self._low_bitrate, self._want_keyframe)
        self.low.start()
        return self.low

    def feed(self, packet: Any) -> None:
        """A packet of the presenter's video, for the low layer's encoder if it runs."""
        if self.low is not None:
            self.low.feed(packet)

    async def release(self) -> None:
        """Stop the low layer's encoder once nobody watches it."""
        low = self.low
        if low is not None and not low.hub.tracks:
            self.low = None
            await low.stop()

    async def stop(self) -> None:
        low, self.low = self.low, None
        if low is not None:
            await low.stop()

    def stats(self) -> dict[str, Any]:
        low = self.low
        return {"running": low is not None and low.running,
                "frames_in": low.frames_in if low else 0,
                "frames_out": low.frames_out if low else 0}
