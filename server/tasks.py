"""Background tasks that keep a reference until they finish, and periodic loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from server import keys

logger = logging.getLogger(__name__)


def spawn(app: web.Application, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Run ``coro`` in the background, holding a reference until it is done."""
    tasks = app[keys.BACKGROUND_TASKS]
    task = asyncio.create_task(coro, name=name)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return task


async def every(seconds: float, job: Callable[[], Awaitable[Any]], name: str) -> None:
    """Run ``job`` now and then every ``seconds``; a failing run is logged, not fatal."""
    while True:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("periodic job %s failed", name)
        await asyncio.sleep(seconds)


async def background_tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the set of background tasks; cancel and await them at shutdown."""
    app[keys.BACKGROUND_TASKS] = set()
    yield
    running = app[keys.BACKGROUND_TASKS]
    tasks = list(running)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
