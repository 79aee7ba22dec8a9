"""The bytes a first visit downloads, measured by Chromium itself (CDP Network events,
``encodedDataLength``: what came over the wire, headers included), with the compression Yilian
serves and without it (the browser asks for ``Accept-Encoding: identity``), in the same run:

1. Yilian's page: the login screen, logging in, the video consultation with the demo CT;
2. OHIF opening that CT (the viewer's code, then the images over DICOMweb);
3. the same two again in the same browser profile: what a second visit costs (revalidation).

    python bench/first_visit.py            # a scratch ``yilian demo``, then the table
    python bench/first_visit.py --url http://127.0.0.1:8080   # an already running demo server

Needs the built browser libraries (``pip install -e .``) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
YILIAN_MAIN = "import sys; from yilian.server.cli import main; sys.exit(main(sys.argv[1:]))"
READY = re.compile(r"Yilian listening on (http://\S+)")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "yilian-demo"
CT_DRAWN = """() => [...document.querySelectorAll("canvas.cornerstone-canvas")].some(c => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  for (let i = 0; i < d.length; i += 4 * 97) if (d[i] > 60) return true;
  return false; })"""


@dataclass
class Tally:
    """Bytes received per part of the site, from CDP's loadingFinished events."""

    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _urls: dict[str, str] = field(default_factory=dict)
    _last: float = 0.0

    def on_request(self, event: dict[str, Any]) -> None:
        self._last = time.monotonic()

    def on_response(self, event: dict[str, Any]) -> None:
        self._urls[event["requestId"]] = event["response"]["url"]

    def on_finished(self, event: dict[str, Any]) -> None:
        self._last = time.monotonic()
        url = self._urls.pop(event["requestId"], "")
        if url.startswith("http"):
            part = _part(urlsplit(url).path)
            self.bytes[part] += int(event["encodedDataLength"])
            self.requests[part] += 1

    def on_failed(self, event: dict[str, Any]) -> None:
        self._last = time.monotonic()

    def on_activity(self, _: dict[str, Any]) -> None:
        self._last = time.monotonic()

    async def quiet(self, seconds: float = 2.0, limit: float = 180.0) -> None:
        """Until the network was silent for ``seconds``: no request started, no byte received
        (a page that keeps a socket or a poll open never reaches Playwright's networkidle)."""
        start = time.monotonic()
        while time.monotonic() - self._last < seconds:
            if time.monotonic() - start > limit:
                raise TimeoutError(f"the network was still busy after {limit:.0f} s")
            await asyncio.sleep(0.2)

    def total(self, *parts: str) -> int:
        return sum(self.bytes[p] for p in parts)


def _part(path: str) -> str:
    if path.startswith("/ohif/"):
        return "ohif"
    if path.startswith("/dicomweb/"):
        return "images"
    if path.startswith("/api/"):
        return "api"
    return "page"  # /, /static/, /locales/


async def _watch(page: Any) -> Tally:
    tally = Tally()
    cdp = await page.context.new_cdp_session(page)
    cdp.on("Network.requestWillBeSent", tally.on_request)
    cdp.on("Network.responseReceived", tally.on_response)
    cdp.on("Network.loadingFinished", tally.on_finished)
    cdp.on("Network.loadingFailed", tally.on_failed)
    cdp.on("Network.dataReceived", tally.on_activity)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
    return tally


async def visit(context: Any, *, ct: str, consultation: int, quick: bool = False
                ) -> dict[str, Tally]:
    """One browser profile: first visit of Yilian and OHIF, then the second visit."""
    context.set_default_timeout(90_000)
    page = await context.new_page()
    tallies = {}
    for visit_name in ("first", "second"):
        tally = await _watch(page)
        await page.goto("/")
        if visit_name == "first":
            await page.locator("input[name=username]").fill("expert")
            await page.locator("input[name=password]").fill(PASSWORD)
            await page.locator("input[name=password]").press("Enter")
            await page.wait_for_function("() => !!sessionStorage.getItem('yilian.token')")
        await page.goto(f"/#/consultations/{consultation}")
        await tally.quiet()
        tallies[f"yilian {visit_name}"] = tally
        if quick:
            break
        tally = await _watch(page)
        await page.goto(f"/ohif/viewer?StudyInstanceUIDs={ct}&lng=zh")
        await page.wait_for_function(CT_DRAWN)
        await tally.quiet()
        tallies[f"ohif {visit_name}"] = tally
    return tallies


async def demo_case(base: str) -> tuple[str, int]:
    """The demo CT and the consultation it is shared with (the expert's video consultation)."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/auth/login",
                             json={"username": "expert", "password": PASSWORD}) as resp:
            auth = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        async with http.get(f"{base}/api/consultations", headers=auth,
                            params={"status": "in_progress"}) as resp:
            rows = await resp.json()
        async with http.get(f"{base}/dicomweb/studies", headers=auth,
                            params={"ModalitiesInStudy": "CT"}) as resp:
            (study,) = await resp.json()
    ct = study["0020000D"]["Value"][0]
    consultation = next(c["id"] for c in rows if ct in c["study_uids"])
    return ct, consultation


def context_options(base: str, compressed: bool) -> dict[str, Any]:
    """A profile that accepts compression or, for the baseline, asks for none."""
    return {"base_url": base, "viewport": {"width": 1366, "height": 768},
            "extra_http_headers": {} if compressed else {"Accept-Encoding": "identity"}}


async def measure(new_context: Callable[[bool], Awaitable[Any]], base: str, quick: bool = False
                  ) -> dict[str, dict[str, Tally]]:
    """Both profiles, compressed and not: {"compressed"|"identity": {visit: Tally}}.
    ``new_context(compressed)`` opens a fresh browser profile."""
    ct, consultation = await demo_case(base)
    results = {}
    for name, compressed in (("compressed", True), ("identity", False)):
        context = await new_context(compressed)
        try:
            results[name] = await visit(context, ct=ct, consultation=consultation, quick=quick)
        finally:
            await context.close()
    return results


def table(results: dict[str, dict[str, Tally]]) -> str:
    """A Markdown table: bytes per visit and part, with and without compression."""
    rows = [("Yilian: page, scripts, language table", "yilian", ("page",)),
            ("Yilian: API (JSON)", "yilian", ("api",)),
            ("OHIF: viewer code", "ohif", ("ohif",)),
            ("OHIF: CT images and metadata", "ohif", ("images",))]
    lines = ["| visit | what | compressed | uncompressed | ratio |", "|---|---|---:|---:|---:|"]
    for visit_name in ("first", "second"):
        for label, key, parts in rows:
            name = f"{key} {visit_name}"
            if name not in results["compressed"]:
                continue
            packed = results["compressed"][name].total(*parts)
            plain = results["identity"][name].total(*parts)
            ratio = f"{plain / packed:.1f}x" if packed else "-"
            lines.append(f"| {visit_name} | {label} | {packed:,} | {plain:,} | {ratio} |")
    return "\n".join(lines)


@contextlib.contextmanager
def scratch_demo() -> Any:
    """``yilian demo`` in a scratch data directory; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="yilian-first-visit-") as work:
        cmd = [sys.executable, "-c", YILIAN_MAIN, "--log-level", "WARNING", "demo",
               "--data-dir", str(Path(work) / "data"), "--port", "0", "--dicom-port", "off"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=ROOT)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if m := READY.search(line):
                    threading.Thread(target=lambda: [None for _ in proc.stdout or []],
                                     daemon=True).start()
                    yield m.group(1).rstrip("/")
                    break
            else:
                raise RuntimeError(f"yilian demo exited with {proc.wait()}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


async def run(base: str, quick: bool) -> str:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        with tempfile.TemporaryDirectory(prefix="yilian-profiles-") as profiles:
            async def new_context(compressed: bool) -> Any:
                # a profile on disk, as a real browser has: its HTTP cache keeps big files
                # (an in-memory profile's cache drops the 17 MB uncompressed OHIF bundle)
                return await pw.chromium.launch_persistent_context(
                    str(Path(profiles) / str(compressed)), executable_path=CHROMIUM,
                    args=CHROMIUM_ARGS, headless=True, **context_options(base, compressed))

            return table(await measure(new_context, base, quick))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running demo server (default: start a scratch one)")
    parser.add_argument("--quick", action="store_true", help="Yilian's page only (smoke run)")
    args = parser.parse_args(argv)
    if args.url:
        print(asyncio.run(run(args.url.rstrip("/"), args.quick)))
        return 0
    with scratch_demo() as base:
        print(asyncio.run(run(base, args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
