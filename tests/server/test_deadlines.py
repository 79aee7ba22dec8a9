"""The deadlines on what a client sends reach every server of the app (here aiohttp's
TestServer; `yilian serve` in test_request_limits): headers that never end, a body that stops
arriving (408, connection closed), and a body that arrives slowly but steadily (not cut)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import with_settings
from yilian.server.app import create_app
from yilian.server.core.settings import Settings

TIMEOUT = 1.0
MARGIN = 4.0  # how late a deadline may be kept on a busy machine


@pytest.fixture
async def quick(settings: Settings) -> AsyncIterator[TestServer]:
    """The app with one-second deadlines."""
    srv = TestServer(create_app(with_settings(settings, header_timeout_seconds=TIMEOUT,
                                              body_timeout_seconds=TIMEOUT)),
                     host="127.0.0.1", port=0)
    await srv.start_server()
    yield srv
    await srv.close()


async def _open(srv: TestServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert srv.port is not None
    return await asyncio.open_connection("127.0.0.1", srv.port)


async def _until_closed(reader: asyncio.StreamReader) -> tuple[float, bytes]:
    t0, got = time.perf_counter(), b""
    while chunk := await asyncio.wait_for(reader.read(65536), TIMEOUT + MARGIN + 5):
        got += chunk
    return time.perf_counter() - t0, got


async def test_headers_that_never_end(quick: TestServer) -> None:
    reader, writer = await _open(quick)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

    async def dribble() -> None:
        while not writer.is_closing():
            writer.write(b"X")
            await asyncio.sleep(0.2)

    task = asyncio.ensure_future(dribble())
    took, got = await _until_closed(reader)
    task.cancel()
    writer.close()
    assert got == b"" and took < TIMEOUT + MARGIN


async def test_an_idle_keep_alive_connection_is_closed(quick: TestServer) -> None:
    reader, writer = await _open(quick)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    took, got = await _until_closed(reader)
    writer.close()
    assert got.startswith(b"HTTP/1.1 200") and took < TIMEOUT + MARGIN


async def test_a_body_that_stops_arriving_is_408(quick: TestServer) -> None:
    reader, writer = await _open(quick)
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nContent-Length: 1000\r\n\r\n{\"username\":")
    took, got = await _until_closed(reader)
    writer.close()
    assert got.startswith(b"HTTP/1.1 408"), got
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
    assert took < TIMEOUT + MARGIN


async def test_a_slow_steady_body_is_not_cut(quick: TestServer) -> None:
    body = json.dumps({"username": "village", "password": "yilian-demo"}).encode()
    reader, writer = await _open(quick)
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                 b"\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\n\r\n")
    for i in range(0, len(body), 8):  # about 3 s in all, never 1 s without a byte
        writer.write(body[i:i + 8])
        await asyncio.sleep(TIMEOUT / 2)
    _, got = await _until_closed(reader)
    writer.close()
    assert got.startswith(b"HTTP/1.1 200"), got
