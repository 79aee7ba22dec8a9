"""Loaded by a server that api_bench --profile starts (this folder on its PYTHONPATH): adds up
the event loop thread's CPU time spent in each layer of a request (aiohttp, our API handler,
the route, the database paths, SQLAlchemy's execution and pool), from SIGUSR1 on; SIGUSR2
writes the sums to $YILIAN_BENCH_CPU_LOG as JSON. Bench-only; nothing in Yilian imports it.

Thread CPU time (``time.thread_time``) around a coroutine counts what ran on the thread while
it was suspended too: run one client at a time, so that nothing else does."""

import os

_path = os.environ.get("YILIAN_BENCH_CPU_LOG")
if _path:
    import functools
    import json
    import signal
    import time
    from collections import defaultdict
    from typing import Any

    _sums: defaultdict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    _started = [time.process_time()]

    def _add(label: str, since: float) -> None:
        entry = _sums[label]
        entry[0] += time.thread_time() - since
        entry[1] += 1

    def _timed(owner: Any, name: str, label: str, is_async: bool) -> None:
        fn = getattr(owner, name)
        if is_async:
            @functools.wraps(fn)
            async def timed(*args: Any, **kwargs: Any) -> Any:
                since = time.thread_time()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    _add(label, since)
        else:
            @functools.wraps(fn)
            def timed(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
                since = time.thread_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    _add(label, since)
        setattr(owner, name, timed)

    import aiohttp.web_protocol as web_protocol
    import sqlalchemy.engine.base as engine_base
    import sqlalchemy.orm.session as orm_session

    from yilian.server.core import api, db, writes

    for owner, name, label, is_async in [
        (web_protocol.RequestHandler, "_handle_request", "aiohttp: the request", True),
        (web_protocol.RequestHandler, "finish_response", "  aiohttp: writing the answer", True),
        (api, "authenticate", "    API: authenticate", True),
        (api, "parse_json_body", "    API: parse the JSON body", True),
        (api, "parse_query", "    API: parse the query", False),
        (api, "_encode", "    API: encode the answer", False),
        (db.Database, "read_sync", "      Database.read_sync", True),
        (db.Database, "write_fused", "      Database.write_fused", True),
        (db.Database, "write_sync", "      Database.write_sync", True),
        (writes.Writes, "run", "        Writes.run", False),
        (engine_base.Engine, "connect", "        SQLAlchemy: pool checkout", False),
        (engine_base.Connection, "close", "        SQLAlchemy: pool return", False),
        (orm_session.Session, "close", "        SQLAlchemy: Session.close", False),
        (engine_base.Connection, "execute", "        SQLAlchemy: Connection.execute", False),
    ]:
        _timed(owner, name, label, is_async)

    _make_handler = api._make_handler

    def _make_timed_handler(route: Any) -> Any:
        handler = _make_handler(route)

        async def timed(request: Any) -> Any:
            since = time.thread_time()
            try:
                return await handler(request)
            finally:
                _add("  API: handler (auth, parse, route, encode)", since)
                _add(f"    route {route.method} {route.path}", since)

        return timed

    api._make_handler = _make_timed_handler

    def _reset(*_: Any) -> None:
        _sums.clear()
        _started[0] = time.process_time()

    def _write(*_: Any) -> None:
        with open(_path, "w") as out:
            json.dump({"process": time.process_time() - _started[0], "layers": _sums}, out)

    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _write)
