"""Loaded by a server that api_bench --statements starts (this folder on its PYTHONPATH):
appends one line per SQL statement any engine runs, with its time, to $YILIAN_BENCH_SQL_LOG.
Bench-only; nothing in Yilian imports it."""

import os
import time

_path = os.environ.get("YILIAN_BENCH_SQL_LOG")
if _path:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _log = open(_path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        _log.write(f"{time.time():.6f} {' '.join(statement.split())[:100]}\n")
