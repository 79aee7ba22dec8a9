"""A user's sessions (their live tokens): when each was last used, and ending them at once in
every server process.

``SessionHub.seen`` notes that a token was used; it is written at most once a minute per
token, in one batch for all tokens (no write per request). ``SessionHub.revoked`` ends tokens
after their revocation is committed: this process's token cache forgets them and its
listeners (the signalling sockets, subscribed through ``TokenCache.on_revoked``) close what
they opened; with Redis configured (``YILIAN_REDIS_URL``) the other processes hear of it on
the channel ``<YILIAN_RTC_REDIS_CHANNEL>:auth`` and do the same, within milliseconds. Without
Redis a single process serves everything, and the signalling re-check is the backstop.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any, cast

import orjson
from aiohttp import web
from sqlalchemy import Table, bindparam, update

from yilian.server.core import keys
from yilian.server.core.auth import TokenCache
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import AuthToken
from yilian.server.core.tasks import TaskSet, every

logger = logging.getLogger(__name__)

#: A token's last use is written at most this often (seconds).
SEEN_EVERY = 60.0
#: Pending last-use times are written this often.
FLUSH_EVERY = 15.0


_TOKENS = cast(Table, AuthToken.__table__)
_LAST_SEEN = (update(_TOKENS).where(_TOKENS.c.token_hash == bindparam("digest"))
              .values(last_seen_at=bindparam("at")))


class SessionHub:
    """Last use of tokens, and revocations and account changes told to every process."""

    def __init__(self, cache: TokenCache, *, redis_url: str = "", channel: str = "") -> None:
        self.cache = cache
        self.redis_url, self.channel = redis_url, channel
        self.host_id = uuid.uuid4().hex
        self._pending: dict[str, datetime] = {}
        self._written: dict[str, float] = {}
        self._redis: Any = None
        self._pubsub: Any = None
        self._tasks = TaskSet()

    # -- last use --------------------------------------------------------------------------

    def seen(self, digest: str) -> None:
        """The token was used now; remembered for the next batch unless written lately."""
        now = time.monotonic()
        if now - self._written.get(digest, -SEEN_EVERY) < SEEN_EVERY:
            return
        self._written[digest] = now
        self._pending[digest] = utcnow()

    def pending(self, digest: str) -> datetime | None:
        """A last use not written yet."""
        return self._pending.get(digest)

    async def flush(self, db: Database) -> int:
        """Write the pending last-use times in one statement; returns how many."""
        pending, self._pending = self._pending, {}
        cutoff = time.monotonic() - SEEN_EVERY
        self._written = {d: t for d, t in self._written.items() if t >= cutoff}
        if not pending:
            return 0
        rows = [{"digest": d, "at": at} for d, at in pending.items()]
        await db.write_sync(lambda session: session.execute(_LAST_SEEN, rows))
        return len(pending)

    # -- revocations -----------------------------------------------------------------------

    async def revoked(self, digests: Iterable[str]) -> None:
        """These tokens were revoked (committed): end them here and in every process."""
        items = list(digests)
        self._apply({"revoked": items})
        await self._publish({"revoked": items})

    async def changed(self, digests: Iterable[str]) -> None:
        """These tokens' user changed (role, password...): forget the cached copies
        everywhere, so the next request reads the account afresh."""
        items = list(digests)
        self._apply({"changed": items})
        await self._publish({"changed": items})

    def _apply(self, message: dict[str, Any]) -> None:
        for digest in message.get("revoked") or ():
            if isinstance(digest, str):
                self.cache.revoked(digest)
                self._pending.pop(digest, None)
        for digest in message.get("changed") or ():
            if isinstance(digest, str):
                self.cache.discard(digest)

    async def _publish(self, message: dict[str, Any]) -> None:
        if self._redis is None or not any(message.values()):
            return
        try:
            await self._redis.publish(self.channel,
                                      orjson.dumps({"from": self.host_id, **message}))
        except Exception as exc:  # the revocation is committed: the re-check ends them later
            logger.warning("could not tell the other processes of a revocation (%s: %.200s)",
                           type(exc).__name__, exc)

    async def _listen(self) -> None:
        assert self._pubsub is not None
        async for raw in self._pubsub.listen():
            if raw.get("type") != "message":
                continue
            try:
                message = orjson.loads(raw["data"])
            except orjson.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("from") != self.host_id:
                self._apply(message)

    async def start(self, db: Database) -> None:
        """Subscribe to the other processes' revocations (with Redis) and start writing the
        last-use times."""
        if self.redis_url:
            import redis.asyncio as redis

            self._redis = redis.Redis.from_url(self.redis_url)
            self._pubsub = self._redis.pubsub()
            await self._pubsub.subscribe(self.channel)
            self._tasks.spawn(self._listen(), name="yilian-session-revocations")
        # ``every`` lets a write under way finish when cancelled (SQLite's write lock).
        self._tasks.spawn(every(FLUSH_EVERY, lambda: self.flush(db), "sessions-last-seen"),
                          name="yilian-session-last-seen")

    async def close(self, db: Database | None = None) -> None:
        """Stop listening; write what is pending; idempotent."""
        await self._tasks.close()
        if db is not None:
            try:
                await self.flush(db)
            except Exception as exc:
                logger.warning("writing sessions' last use failed (%s: %.200s)",
                               type(exc).__name__, exc)
        pubsub, self._pubsub = self._pubsub, None
        client, self._redis = self._redis, None
        if pubsub is not None:
            await pubsub.aclose()
        if client is not None:
            await client.aclose()


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the app's session hub while the database is open."""
    hub, db = app[keys.SESSIONS], app[keys.DATABASE]
    await hub.start(db)
    try:
        yield
    finally:
        await hub.close(db)
