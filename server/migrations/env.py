"""Alembic environment: runs on a connection the application hands in, or on a URL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context

from yilian.server.schema import metadata

target_metadata = metadata()
config = context.config


def _run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from yilian.server.core.db import Database

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or hand in a connection")

    async def go() -> None:
        db = Database(url)
        async with db.engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
        await db.close()

    asyncio.run(go())


_online()
