"""Logging of what clients send: throttled, without tracebacks, and never the content.

A client can make the server log by sending garbage (a frame that is not socket.io, an
invalid engine.io packet, a bad handshake), as often as it likes. So such records go through
a ``ThrottledLog``: at most one a window, as a warning without a traceback, carrying how many
more were dropped since the last one. Frames may carry patient data (a chat line), so they
are described by event name, size and socket id only (``describe_frame``).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Collection
from typing import Any

#: Seconds between two warnings about client garbage (per server and per kind).
GARBAGE_LOG_SECONDS = 60.0

_EVENT_NAME = re.compile(r'[^\["]*\[\s*"([a-z-]{1,32})"', re.ASCII)
# Where python-engineio's messages quote what the client sent: a session id ("Invalid session
# <sid>", "... for session <sid> is not connected") and an Origin header.
_ENGINEIO_QUOTES = (
    re.compile(r"(?<=session ).+?(?= is not connected|$)", re.S),
    re.compile(r"^.+?(?= is not an accepted origin)", re.S),
)


class ThrottledLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for records a client can cause: nothing below WARNING, no traceback (only the
    exception's type), at most one record per ``window`` seconds.

    Given to python-engineio as its logger, too: it logs every packet's contents at INFO, and
    tracebacks for packets it cannot decode.
    """

    def __init__(self, logger: logging.Logger, window: float = GARBAGE_LOG_SECONDS,
                 scrub: Callable[[str], str] | None = None) -> None:
        super().__init__(logger, {})
        self.window = window
        self.scrub = scrub
        self._logged_at = float("-inf")
        self._dropped = 0

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - the logging API's name
        return level >= logging.WARNING and self.logger.isEnabledFor(level)

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        """Log one record a window (as a warning, with the count dropped since the last)."""
        if not self.isEnabledFor(level):
            return
        now = time.monotonic()
        if now - self._logged_at < self.window:
            self._dropped += 1
            return
        text = str(msg) % args if args else str(msg)
        if self.scrub is not None:
            text = self.scrub(text)
        exc_info = kwargs.get("exc_info")
        if exc_info:
            exc = sys.exc_info()[1] if exc_info is True else (
                exc_info[1] if isinstance(exc_info, tuple) else exc_info)
            if isinstance(exc, BaseException):
                text += f" ({type(exc).__name__})"
        if self._dropped:
            text += (f" [{self._dropped} more not logged in the last "
                     f"{now - self._logged_at:.0f} s]")
        self.logger.warning("%s", text)
        self._logged_at, self._dropped = now, 0


def describe_frame(data: object, known_events: Collection[str]) -> str:
    """What a log may say about a client's frame: its event name when it is one of ours
    (never a name or text the client made up) and its size."""
    size = len(data) if isinstance(data, (str, bytes, bytearray)) else 0
    event = "-"
    if isinstance(data, str):
        match = _EVENT_NAME.match(data[:128])
        if match is not None and match.group(1) in known_events:
            event = match.group(1)
    return f'event "{event}", {size} characters'


def scrub_engineio(text: str) -> str:
    """python-engineio's message with what it quotes of the client replaced by its length."""
    for quote in _ENGINEIO_QUOTES:
        text = quote.sub(lambda m: f"<{len(m.group(0))} characters>", text)
    return text
