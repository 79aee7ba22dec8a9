"""Typed application keys of the signalling package."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from yilian.signaling.server import RtcServer

RTC: web.AppKey[RtcServer] = web.AppKey("rtc")
