"""Run ``yilian serve`` as a real subprocess for tests that drive it from outside."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from yilian.server.core.settings import Settings

READY = re.compile(r"Yilian listening on (http://\S+)")


def wait_ready(stream: IO[str], proc: subprocess.Popen[str]) -> str:
    """Read lines until the ready line; return its URL."""
    lines = []
    for line in stream:
        lines.append(line)
        m = READY.search(line)
        if m:
            return m.group(1)
    raise RuntimeError(f"server exited ({proc.wait()}) before it was ready:\n" + "".join(lines))


@contextmanager
def live_server(settings: Settings, *extra: str, command: str = "serve",
                env: dict[str, str] | None = None) -> Iterator[str]:
    """``yilian serve`` on a free loopback port with these settings; yields its base URL."""
    environ = os.environ | {
        "YILIAN_SECRET_KEY": settings.secret_key,
        "YILIAN_LOGIN_ATTEMPTS_PER_MINUTE": "100000",
    } | (env or {})
    args = [sys.executable, "-m", "yilian.server.cli", "--log-level", "WARNING", command,
            "--host", "127.0.0.1", "--port", "0", "--data-dir", str(settings.data_dir),
            "--dicom-port", "off", *extra]
    if settings.database_url:
        args += ["--database-url", settings.database_url]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=environ)
    try:
        assert proc.stdout is not None
        yield wait_ready(proc.stdout, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
