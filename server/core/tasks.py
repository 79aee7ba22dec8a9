"""Background tasks that keep a reference until they finish, and periodic loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from yilian.server.core import keys

logger = logging.getLogger(__name__)


class TaskSet:
    """Holds a reference to each background task until it is done (a bare task can be
    garbage-collected mid-flight); ``close()`` cancels and awaits whatever still runs."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every running task and wait for them; safe to call twice."""
        tasks = list(self._tasks)
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def spawn(app: web.Application, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Run ``coro`` in the background of ``app``, until it ends or the app shuts down."""
    return app[keys.BACKGROUND_TASKS].spawn(coro, name)


async def every(seconds: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
    """Run ``job`` now and then every ``seconds``; a failing run is logged, not fatal.

    A cancel (the app shutting down) waits for a run under way to finish before the loop
    ends: a cancel landing inside the run's transaction could leave an aiosqlite connection
    holding SQLite's write lock (its thread completes BEGIN IMMEDIATE after the await was
    abandoned), and every later writer on the file — the audit log's last flush, another
    process — would then wait out the busy timeout and fail."""
    while True:
        run = asyncio.ensure_future(job())
        try:
            await asyncio.shield(run)
        except asyncio.CancelledError:
            await asyncio.wait([run])
            if not run.cancelled() and run.exception() is not None:
                logger.error("periodic job %s failed while stopping: %s", name,
                             run.exception())
            raise
        except Exception:
            logger.exception("periodic job %s failed", name)
        await asyncio.sleep(seconds)


async def background_tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the app's background tasks; cancel and await them at shutdown."""
    tasks = app[keys.BACKGROUND_TASKS] = TaskSet()
    yield
    await tasks.close()
