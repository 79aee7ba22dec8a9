"""Browser fixtures: the real Debian Chromium driven by Playwright against the real server.

The e2e tests are skipped only when Chromium is absent on a developer machine; on CI
(``CI=true``) a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

CHROMIUM = Path(os.environ.get("YILIAN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # WebRTC between two pages of this browser: fake camera and microphone, no permission
    # prompt, plain host candidates instead of mDNS names, loopback allowed (a machine may
    # have no other interface).
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns", "--allow-loopback-in-peer-connection",
]
ON_CI = os.environ.get("CI") == "true"
TIMEOUT_MS = 15_000


def _skip_without_browser() -> None:
    if not CHROMIUM.exists() and not ON_CI:
        pytest.skip(f"{CHROMIUM} is not installed (the e2e tests always run on CI)")


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Any]:
    """The Debian Chromium, headless, with the flags above (skipped where it is absent, except
    on CI); closed at the end of the block. Fixtures of any scope yield from it."""
    _skip_without_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def browser(server: TestServer) -> AsyncIterator[object]:
    """A headless Chromium; depends on ``server`` so it closes before the server does."""
    async with launched_chromium() as b:
        yield b


@pytest.fixture
def base_url(server: TestServer) -> str:
    """Where the web client is served."""
    return str(server.make_url("/")).rstrip("/")


@pytest.fixture
def new_page(browser: object, base_url: str):  # noqa: ANN201 - returns an async factory
    """``await new_page()`` opens a fresh browser context (its own sessionStorage) at 1366x768."""

    async def make(width: int = 1366, height: int = 768):  # noqa: ANN202
        context = await browser.new_context(viewport={"width": width, "height": height},  # type: ignore[attr-defined]
                                            base_url=base_url, timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors  # type: ignore[attr-defined]
        return page

    return make
