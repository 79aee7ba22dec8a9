"""The two servers of bench/notify_bench.py, each in its own process, driven over stdin.

``yilian DATA_DIR USERS TOKENS_JSON``: Yilian's app (create_app, as ``yilian serve`` runs it)
on a fresh database with USERS specialists and a token each (written to TOKENS_JSON). Each
line ``alert K`` on stdin commits one green-channel-style notification to every one of them
through ``core.notify.send`` in one write transaction, exactly as a workflow does; the moment
the committed rows reach ``Database.notify_sink`` is printed as ``commit <unix time>``.

``bare USERS``: a bare python-socketio server (no auth, no database): a client connects to
``/notify`` with ``auth={"user": n}`` and joins room ``user:<n>``; ``alert K`` prints
``commit <unix time>`` and emits the same payload to each user's room. It is python-socketio
as shipped (its own engine.io loop, its manager's emit), with orjson as the codec like Yilian.

Both print ``listening on http://127.0.0.1:PORT`` once ready. ``YILIAN_REDIS_URL`` set: both
use python-socketio's Redis manager.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import socketio
from aiohttp import web
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)] if str(ROOT) not in sys.path else []

SECRET = "notify-bench-secret"
TEXTS = {"zh-CN": ("绿色通道：卒中转诊", "沙琅镇卫生院 → 电白区人民医院 神经内科，请立即接诊"),
         "en": ("Green channel: stroke referral", "Shalang → Dianbai neurology, accept now")}


def _listen() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    return sock


async def _serve(app: web.Application, on_line: Callable[[str], Awaitable[None]]) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = _listen()
    await web.SockSite(runner, sock).start()
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            await on_line(line.strip())
    finally:
        await runner.cleanup()


def _commit(at: float) -> None:
    print(f"commit {at!r}", flush=True)


async def run_yilian(data_dir: Path, users: int, tokens_file: Path) -> None:
    from yilian.server.app import create_app
    from yilian.server.core import keys, notify
    from yilian.server.core.auth import hash_password, token_digest
    from yilian.server.core.db import Database, utcnow
    from yilian.server.core.models import AuthToken, Institution, User
    from yilian.server.core.settings import Settings
    from yilian.server.demo import load_demo
    from yilian.server.schema import migrate

    settings = Settings.defaults().with_overrides(
        data_dir=data_dir, secret_key=SECRET, dicom_port="off", host="127.0.0.1", port=0,
        redis_url=os.environ.get("YILIAN_REDIS_URL", ""))
    db = Database(settings.resolved_database_url)
    await migrate(db)
    await load_demo(db, settings)
    password = hash_password("not-used-by-the-bench")
    tokens: list[str] = []
    async with db.write() as session:
        place = (await session.execute(select(Institution).limit(1))).scalar_one()
        rows = [User(username=f"oncall{n}", display_name=f"On-call {n}", role="specialist",
                     institution_id=place.id, password_hash=password, specialties=["neurology"])
                for n in range(users)]
        session.add_all(rows)
        await session.flush()
        expires = utcnow() + timedelta(hours=6)
        for n, user in enumerate(rows):
            token = f"bench-token-{n:05d}-{os.urandom(12).hex()}"
            tokens.append(token)
            session.add(AuthToken(token_hash=token_digest(token), user_id=user.id,
                                  expires_at=expires))
        ids = [u.id for u in rows]
    await db.close()
    await asyncio.to_thread(tokens_file.write_text, json.dumps(tokens))

    app = create_app(settings)

    async def wrap_sink(app: web.Application) -> Any:
        # After the signalling context has set the sink: note when the rows reach it.
        database = app[keys.DATABASE]
        deliver = database.notify_sink
        assert deliver is not None

        def sink(rows: list[Any]) -> None:
            _commit(time.time())
            deliver(rows)

        database.notify_sink = sink
        yield

    app.cleanup_ctx.append(wrap_sink)

    async def on_line(line: str) -> None:
        if not line.startswith("alert "):
            return
        database = app[keys.DATABASE]
        async with database.write() as session:
            recipients = (await session.execute(select(User).where(User.id.in_(ids)))).scalars()
            notify.send(session, list(recipients), "referral.green_channel", TEXTS,
                        resource_type="referral", resource_id=int(line.split()[1]), urgent=True)

    await _serve(app, on_line)


class _OrJson:
    """orjson for the bare server's frames, as Yilian uses: the runs compare the servers, not
    the JSON codecs."""

    @staticmethod
    def dumps(value: Any, **_: Any) -> str:
        return orjson.dumps(value).decode()

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        return orjson.loads(text)


async def run_bare(users: int) -> None:
    redis_url = os.environ.get("YILIAN_REDIS_URL", "")
    manager = socketio.AsyncRedisManager(redis_url, channel="notify-bench-bare") \
        if redis_url else None
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, logger=False,
                               engineio_logger=False, async_handlers=False, json=_OrJson)

    @sio.on("connect", namespace="/notify")
    async def connect(sid: str, environ: Any, auth: Any = None) -> None:
        await sio.enter_room(sid, f"user:{int(auth['user'])}", namespace="/notify")

    app = web.Application()
    sio.attach(app)

    async def on_line(line: str) -> None:
        if not line.startswith("alert "):
            return
        k = int(line.split()[1])
        created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
        _commit(time.time())
        for n in range(users):
            await sio.emit("notification", {
                "id": k * users + n, "kind": "referral.green_channel", "title": TEXTS["zh-CN"][0],
                "body": TEXTS["zh-CN"][1], "resource": {"type": "referral", "id": k},
                "urgent": True, "created_at": created, "read_at": None,
            }, room=f"user:{n}", namespace="/notify")

    await _serve(app, on_line)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "yilian":
        Path(sys.argv[2]).mkdir(parents=True, exist_ok=True, mode=0o700)
        asyncio.run(run_yilian(Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])))
    else:
        asyncio.run(run_bare(int(sys.argv[2])))
