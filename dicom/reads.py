"""Single-statement reads on the hot paths (QIDO, frame and image retrieval).

On SQLite every step of an async query (connect, BEGIN, execute, fetch, ROLLBACK) is a hop to
aiosqlite's thread and back; a viewer asking for dozens of images a second pays that each
time. Here the whole read runs in one worker-thread call on a synchronous pysqlite engine over
the same database file (WAL mode lets it read while the server writes). On PostgreSQL the
application's async engine is used as is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Engine, Row, Select, create_engine

from yilian.server.core.db import Database


class Reads:
    """Runs one SELECT and returns its rows; ``close()`` is idempotent."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sync: Engine | None = None
        if db.is_sqlite:
            url = db.engine.url.set(drivername="sqlite")
            self._sync = create_engine(url, connect_args={"timeout": 30,
                                                          "check_same_thread": False})

    async def all(self, stmt: Select[Any]) -> list[Row[Any]]:
        """The rows of ``stmt``."""
        if self._sync is None:
            async with self.db.engine.connect() as conn:
                return list(await conn.execute(stmt))
        return await asyncio.to_thread(self._run, stmt)

    def _run(self, stmt: Select[Any]) -> list[Row[Any]]:
        assert self._sync is not None
        with self._sync.connect() as conn:
            return list(conn.execute(stmt))

    def close(self) -> None:
        engine, self._sync = self._sync, None
        if engine is not None:
            engine.dispose()
