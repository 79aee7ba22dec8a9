"""Deadlines on what a client sends, which aiohttp bounds in size but not in time.

aiohttp caps a request's header lines and fields (``max_line_size``, ``max_field_size``) and
the bodies read whole (``client_max_size``), but a client may dribble its headers a byte a
second, or declare a body and send five bytes of it, and hold the connection, and whatever
the handler has set aside for it, as long as it likes. Two deadlines, given to every server
of the app (``yilian serve`` and the tests' TestServer alike) by :func:`connection_options`
and :func:`body_deadline` in ``create_app``:

- **headers**: aiohttp closes a connection that is waiting for a request once its keep-alive
  deadline has passed. That deadline is armed when the connection opens and again after each
  response, and never fires while a request is being handled, so at ``header_timeout_seconds``
  it is a header deadline: the complete headers of a request must arrive within it (and an
  idle keep-alive connection is closed after it, as Apache and nginx do after 5 s and 75 s).
- **bodies**: a request whose body stops arriving (no byte for ``body_timeout_seconds`` while
  the server is ready to read more) is answered 408 and its connection closed. The handler's
  next read raises, so it lets go of what it holds for the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from yilian.server.core.errors import YilianError
from yilian.server.core.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestTimeout(YilianError):
    status = 408
    code = "request_timeout"


def connection_options(settings: Settings) -> dict[str, Any]:
    """aiohttp's per-connection options (``web.Application(handler_args=...)``)."""
    return {"keepalive_timeout": settings.header_timeout_seconds}


@dataclass(eq=False)
class _Body:
    """A request body being received: how much had arrived when it was last seen growing."""

    request: web.Request
    loop: asyncio.AbstractEventLoop
    total: int
    since: float
    stalled: bool = False
    timer: asyncio.TimerHandle | None = None


def body_deadline(settings: Settings) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware (the outermost) cutting off request bodies that stop arriving."""
    timeout = settings.body_timeout_seconds
    interval = min(1.0, timeout / 4)

    def check(body: _Body) -> None:
        body.timer = None
        content, transport = body.request.content, body.request.transport
        if content.is_eof() or content.exception() is not None or transport is None:
            return
        now = body.loop.time()
        # Time counts only while the server reads: a transport paused because the handler
        # has not consumed what came is the server's delay, not the client's.
        if content.total_bytes != body.total or not transport.is_reading():
            body.total, body.since = content.total_bytes, now
        elif now - body.since >= timeout:
            body.stalled = True
            content.set_exception(RequestTimeout(
                f"no byte of the request body arrived for {timeout:g} s",
                details={"timeout_seconds": timeout}))
            return
        body.timer = body.loop.call_later(interval, check, body)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists or request.content.is_eof():
            return await handler(request)
        loop = asyncio.get_running_loop()
        body = _Body(request, loop, request.content.total_bytes, loop.time())
        body.timer = loop.call_later(interval, check, body)
        try:
            response = await handler(request)
        finally:
            if body.timer is not None:
                body.timer.cancel()
        if body.stalled:
            # Answer, then close rather than wait (linger) for the rest of a body that is
            # not coming.
            response.force_close()
            try:
                await response.prepare(request)
                await response.write_eof()
            except ConnectionError:
                pass
            request.protocol.force_close()
        return response

    return middleware
