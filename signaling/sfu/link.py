"""Requests from one server process to the broadcast relay of another, through Redis.

A viewer's socket may sit on any process; the room's broadcast runs on the process where the
presenter published (``RoomState.sfu_host``). A request is one message on the Redis manager's
channel addressed to that process (``FanoutRedisManager.publish_each``); the reply is one
message back to the asker. What the broadcast then sends the viewer (its offer, ``layer``)
goes to the viewer's peer channel, which the manager already carries.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from yilian.server.core.errors import YilianError
from yilian.server.core.tasks import TaskSet
from yilian.signaling.errors import NotAvailable
from yilian.signaling.fanout import FanoutRedisManager
from yilian.signaling.sfu.relay import BroadcastRelay

logger = logging.getLogger(__name__)

#: The fan-out key of relay messages (not a socket.io namespace any client can use).
CHANNEL = "/yilian-sfu"


class RelayLink:
    """Carries :meth:`BroadcastRelay.run` calls between processes."""

    def __init__(self, manager: FanoutRedisManager, relay: BroadcastRelay,
                 timeout: float = 10.0) -> None:
        self._manager = manager
        self._relay = relay
        self._timeout = timeout
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._tasks = TaskSet()
        relay.host_id = manager.host_id
        manager.fanout[CHANNEL] = self._on_message

    async def call(self, host: str, op: str, args: dict[str, Any]) -> Any:
        """Run ``op`` on the relay of process ``host``; its error is raised here."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        body = {"id": request_id, "from": self._manager.host_id, "op": op, "args": args}
        try:
            await self._manager.publish_each(CHANNEL, "request", [(host, body)])
            async with asyncio.timeout(self._timeout):
                return await future
        except TimeoutError:
            raise NotAvailable("the server process holding this broadcast did not answer; "
                               "it may have stopped") from None
        finally:
            self._pending.pop(request_id, None)

    async def _on_message(self, event: str, items: list[Any]) -> None:
        for item in items:
            if not (isinstance(item, list | tuple) and len(item) == 2
                    and item[0] == self._manager.host_id and isinstance(item[1], dict)):
                continue
            body = item[1]
            if event == "request":
                # Not awaited here: the manager's listener must go on reading Redis.
                self._tasks.spawn(self._serve(body))
            elif event == "reply":
                future = self._pending.get(str(body.get("id")))
                if future is None or future.done():
                    continue
                error = body.get("error")
                if isinstance(error, dict):
                    future.set_exception(YilianError(str(error.get("message", "")),
                                                     code=str(error.get("code", "bad_request"))))
                else:
                    future.set_result(body.get("result"))

    async def _serve(self, body: dict[str, Any]) -> None:
        asker = body.get("from")
        if not isinstance(asker, str):  # a reply could not reach it
            logger.warning("a relay request named no process to answer; dropped")
            return
        reply: dict[str, Any] = {"id": body.get("id")}
        try:
            reply["result"] = await self._relay.run(str(body.get("op")), body.get("args") or {})
        except YilianError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        except Exception as exc:
            logger.error("relay request %s failed with %s", str(body.get("op"))[:40],
                         type(exc).__name__)
            reply["error"] = {"code": "internal_error",
                              "message": "the broadcast relay could not handle this request"}
        await self._manager.publish_each(CHANNEL, "reply", [(asker, reply)])

    async def close(self) -> None:
        await self._tasks.close()
        for future in self._pending.values():
            future.cancel()
