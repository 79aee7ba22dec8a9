"""The periodic re-check of open sockets: are their tokens still good, are their rooms open.

A logout through this process ends its sockets at once (``RtcNamespace.token_revoked``,
subscribed to the core's token cache). What no event announces here — a logout through
another process, a token's expiry, a deactivated account, a consultation that was completed
or cancelled — is found by this check, every ``rtc_recheck_seconds``: one query for the
tokens of all the process's sockets (``/rtc`` and ``/notify``), one for the state of all their rooms. The relay's hot
path pays nothing for it; ``join`` and ``chat`` check the token in their own transaction.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from yilian.signaling.namespace import RtcNamespace
from yilian.signaling.rooms import parse_room
from yilian.signaling.session import Gate, Session

logger = logging.getLogger(__name__)


class TokenSockets(Protocol):
    """A namespace whose sockets live as long as their token (``/rtc``, ``/notify``)."""

    gate: Gate
    sessions: dict[str, Session]

    def end_session(self, sid: str) -> None:
        """Tell the socket its session ended and disconnect it."""


async def end_dead_sessions(namespace: TokenSockets) -> None:
    """End the sockets whose token has expired, was revoked or whose user was deactivated."""
    now = time.time()
    sessions = [(sid, s) for sid, s in list(namespace.sessions.items()) if not s.ended]
    for sid, session in sessions:
        if now >= session.user.expires_at:
            namespace.end_session(sid)
    digests = {s.user.token for _, s in sessions if not s.ended}
    if digests:
        live = await namespace.gate.live_tokens(digests)
        for sid, session in sessions:
            if session.user.token not in live:
                namespace.end_session(sid)


async def recheck(namespace: RtcNamespace) -> None:
    """End the sockets whose token is no longer good and close the rooms no longer open."""
    await end_dead_sessions(namespace)
    names = {name for s in list(namespace.sessions.values()) if not s.ended for name in s.rooms}
    if names:
        refs = {parse_room(name) for name in names}
        still = await namespace.gate.open_rooms(refs)
        for ref in sorted(refs - still, key=lambda r: r.name):
            await namespace.shut_room(ref.name)
    namespace.chat_limiter.prune()
    namespace.teaching.limiter.prune()


async def recheck_every(namespace: RtcNamespace, seconds: float,
                        others: Sequence[TokenSockets] = ()) -> None:
    """Run ``recheck`` (and ``end_dead_sessions`` for the ``others``, e.g. ``/notify``)
    every ``seconds`` until cancelled; a failed check is logged and the next round tries
    again."""
    checks: list[Callable[[], Awaitable[None]]] = [lambda: recheck(namespace)]
    checks += [functools.partial(end_dead_sessions, other) for other in others]
    while True:
        await asyncio.sleep(seconds)
        for check in checks:
            try:
                await check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Its queries carry token digests and room ids, never patient data.
                logger.warning("socket re-check failed (%s: %.200s); retrying in %.1f s",
                               type(exc).__name__, exc, seconds)
