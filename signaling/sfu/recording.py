"""What a broadcast needs of its recorder (``record.Recorder``), and starting one.

The broadcast feeds the recorder from the same hubs as its viewers (no re-encoding); where
the recorder comes from (a file and a database row) is the caller's factory's business
(``relay.BroadcastRelay``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import av
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

logger = logging.getLogger(__name__)


class Recorder(Protocol):
    """What the broadcast needs of ``record.Recorder``."""

    container: str
    #: Called by the recorder when a full queue made its file skip to the next keyframe.
    want_keyframe: Callable[[], None] | None

    def write_video(self, packet: av.Packet) -> None: ...

    def write_audio(self, packet: av.Packet) -> None: ...

    async def close(self) -> Any: ...


#: ``factory(video_mime, audio_mime)``: a started recorder, or ``None`` for no recording.
RecorderFactory = Callable[[str, "str | None"],
                           "Recorder | None | Awaitable[Recorder | None]"]


async def open_recorder(factory: RecorderFactory, video: RTCRtpCodecParameters,
                        audio: RTCRtpCodecParameters | None, room: str) -> Recorder | None:
    """The factory's recorder for these codecs; ``None`` for no recording, or when the
    factory failed (logged: a recording that cannot start never stops the broadcast)."""
    try:
        made = factory(video.mimeType, audio.mimeType if audio else None)
        return await made if inspect.isawaitable(made) else made
    except Exception:
        logger.exception("the recording of %s could not start", room)
        return None


async def close_recorder(recorder: Recorder, room: str) -> tuple[bool, Any]:
    """Close ``recorder``: ``(True, its result)``, or ``(False, None)`` if it failed (logged)."""
    try:
        return True, await recorder.close()
    except Exception:
        logger.exception("the recording of %s did not close cleanly", room)
        return False, None
