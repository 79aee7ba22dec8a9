"""The OHIF Viewer served by Yilian, in real Chromium, signed in with the Yilian session: the
expert of the video consultation reads its CT and its slide; without a session OHIF's requests
are refused and the page goes back to Yilian's login. One server and one browser for the module.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import expect

from tests.conftest import PG_URL, _pg_admin, _pg_url, base_settings
from tests.e2e.conftest import TIMEOUT_MS, launched_chromium
from tests.e2e.test_consultation_flow import login
from yilian.server.app import create_app
from yilian.server.core.settings import Settings
from yilian.server.demo import DEMO_PASSWORD
from yilian.web.build import ensure_built

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

#: A canvas with a picture on it: enough pixels that are neither black nor one flat colour.
CANVAS_SHOWS_IMAGE = """(selector) => {
  const canvases = [...document.querySelectorAll(selector)].filter(c => c.width > 64);
  return canvases.some(c => {
    const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const seen = new Set(); let lit = 0;
    for (let i = 0; i < data.length; i += 4 * 13) {
      if (data[i] + data[i + 1] + data[i + 2] > 30) lit++;
      seen.add(data[i] >> 4 << 8 | data[i + 1] >> 4 << 4 | data[i + 2] >> 4);
    }
    return lit > data.length / (4 * 13) / 20 && seen.size > 4;
  });
}"""
#: CSP violations of the page (workers report theirs on the console).
WATCH_CSP = """document.addEventListener("securitypolicyviolation",
  e => (window.__csp = window.__csp || []).push(e.violatedDirective + " " + e.blockedURI));"""
FRAME = re.compile(r"/instances/([0-9.]+)/frames/\d+")


@pytest.fixture(scope="module")
def ohif_settings(template: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Settings]:
    """The demo alliance (the CT and the slide come from dicom/demo.py), for this module."""
    tpl_dir, tpl_name = template
    data_dir = tmp_path_factory.mktemp("ohif") / "data"
    shutil.copytree(tpl_dir, data_dir)
    if not PG_URL:
        yield base_settings(data_dir)
        return
    name = f"yilian_ohif_{data_dir.parent.name[-8:]}".replace("-", "_")
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{tpl_name}"'))
    yield base_settings(data_dir, _pg_url(name))
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ohif_server(ohif_settings: Settings) -> AsyncIterator[TestServer]:
    await asyncio.to_thread(ensure_built)
    server = TestServer(create_app(ohif_settings), host="127.0.0.1", port=0)
    await server.start_server()
    yield server
    await server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ohif_browser(ohif_server: TestServer) -> AsyncIterator[Any]:
    async with launched_chromium() as browser:
        yield browser


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def studies(ohif_server: TestServer) -> dict[str, Any]:
    """The expert's token and the demo studies by modality, with the slide's pyramid levels
    (instance UID -> TotalPixelMatrixColumns)."""
    url = str(ohif_server.make_url("/")).rstrip("/")
    async with ClientSession() as http:
        async with http.post(f"{url}/api/auth/login",
                             json={"username": "expert", "password": DEMO_PASSWORD}) as resp:
            token = (await resp.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{url}/dicomweb/studies", headers=auth) as resp:
            rows = await resp.json()
        by_modality = {}
        for row in rows:
            modalities = row["00080061"]["Value"]
            by_modality["SM" if "SM" in modalities else modalities[0]] = row["0020000D"]["Value"][0]
        sm = by_modality["SM"]
        async with http.get(f"{url}/dicomweb/studies/{sm}/metadata", headers=auth,
                            params={}) as resp:
            instances = await resp.json()
    levels = {i["00080018"]["Value"][0]: i["00480006"]["Value"][0] for i in instances
              if "00480006" in i}
    return {"token": token, "CT": by_modality["CT"], "SM": sm, "levels": levels}


class Watch:
    """What a page asked of Yilian and what went wrong."""

    def __init__(self, page: Any) -> None:
        self.responses: list[tuple[int, str]] = []
        self.requests: list[Any] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        page.on("response", lambda r: self.responses.append((r.status, r.url)))
        page.on("request", lambda r: self.requests.append(r))
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def failed(self, *prefixes: str) -> list[tuple[int, str]]:
        return [(s, u) for s, u in self.responses
                if s >= 400 and urlsplit(u).path.startswith(prefixes)]

    def csp(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def frames(self) -> list[str]:
        return [m.group(1) for r in self.requests if (m := FRAME.search(r.url))]


async def _page(browser: Any, server: TestServer) -> Any:
    context = await browser.new_context(viewport={"width": 1366, "height": 768},
                                        base_url=str(server.make_url("/")).rstrip("/"),
                                        timezone_id="Asia/Shanghai")
    context.set_default_timeout(TIMEOUT_MS * 2)
    await context.add_init_script(WATCH_CSP)
    return await context.new_page()


def _stained_share(png: bytes) -> float:
    """The share of pixels coloured like H&E tissue (pink to purple: red and blue over green)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return float(((r - g > 40) & (b - g > 20)).mean())


async def _wait_for_stain(viewport: Any, share: float = 0.1, seconds: float = 60) -> None:
    """The slide's WebGL canvas cannot be read back: look at the viewport's screenshot."""
    deadline = asyncio.get_running_loop().time() + seconds
    while _stained_share(await viewport.screenshot()) < share:
        assert asyncio.get_running_loop().time() < deadline, "no tissue drawn in the viewport"
        await asyncio.sleep(0.5)


async def _assert_clean(page: Any, watch: Watch, token: str) -> None:
    assert watch.failed("/dicomweb/", "/ohif/") == []
    assert watch.csp() == [] and await page.evaluate("window.__csp || []") == []
    assert watch.errors == []
    dicomweb = [r for r in watch.requests if urlsplit(r.url).path.startswith("/dicomweb/")]
    assert dicomweb
    for request in dicomweb:
        assert token not in request.url
        assert (await request.all_headers())["authorization"].startswith("Bearer ")


async def test_the_expert_reads_the_ct_in_ohif(ohif_server, ohif_browser, studies) -> None:
    home = await _page(ohif_browser, ohif_server)
    await login(home, "expert")  # Yilian's own login: the token lands in sessionStorage
    token = await home.evaluate("sessionStorage.getItem('yilian.token')")
    # login() starts in English; the reading window follows Yilian's language: switch to Chinese
    await home.locator("#topbar .lang-switch[lang=zh-CN]").click()
    await expect(home.locator("html")).to_have_attribute("lang", "zh-CN")
    # From the consultation the CT is shared with, its "open in OHIF" button: the reading
    # window opens with a copy of this tab's session, no token in its address.
    case = await home.evaluate("""async (uid) => {
      const res = await fetch("/api/consultations", {headers: {Authorization:
        "Bearer " + sessionStorage.getItem("yilian.token")}});
      return (await res.json()).find((c) => c.study_uids.includes(uid)).id;
    }""", studies["CT"])
    await home.goto(f"/#/consultations/{case}")
    row = home.locator(f"#studies-panel li[data-study-uid='{studies['CT']}']")
    async with home.context.expect_page() as opened:
        await row.get_by_test_id("open-ohif").click()
    page = await opened.value
    watch = Watch(page)
    await page.wait_for_url(re.compile(r"/ohif/viewer\?StudyInstanceUIDs="))
    assert "&lng=zh" in page.url and token not in page.url, page.url
    await page.wait_for_function(CANVAS_SHOWS_IMAGE, arg="canvas.cornerstone-canvas",
                                 timeout=60_000)
    await expect(page.get_by_text("Chest axial 5 mm").first).to_be_visible()
    await expect(page.get_by_text("检查").first).to_be_visible()  # OHIF's Chinese: "Studies"
    assert await page.evaluate("document.documentElement.lang") != ""
    # scroll to the next slice: another frame is fetched and drawn
    before = len(watch.frames())
    await page.locator("canvas.cornerstone-canvas").first.hover()
    await page.mouse.wheel(0, 400)
    await expect(page.get_by_text(re.compile(r"\((?:[2-9]|1[0-2])/12\)")).first).to_be_visible()
    await page.screenshot(path="/tmp/ohif-ct.png")
    assert len(watch.frames()) >= before
    await _assert_clean(page, watch, token)
    await page.context.close()


async def test_the_slide_opens_in_microscopy_and_zooming_loads_deeper_tiles(
        ohif_server, ohif_browser, studies) -> None:
    levels: dict[str, int] = studies["levels"]
    assert len(set(levels.values())) >= 3, levels  # a pyramid: the demo slide has levels
    page = await _page(ohif_browser, ohif_server)
    watch = Watch(page)
    await login(page, "expert")
    token = await page.evaluate("sessionStorage.getItem('yilian.token')")
    await page.goto(f"/ohif/microscopy?StudyInstanceUIDs={studies['SM']}&lng=zh")
    viewport = page.locator(".DicomMicroscopyViewer, [data-cy='viewport-pane']").first
    await expect(viewport).to_be_visible(timeout=60_000)
    await _wait_for_stain(viewport)
    await page.wait_for_load_state("networkidle")
    first = {levels[uid] for uid in watch.frames() if uid in levels}
    assert first, "no tiles were requested"
    await page.screenshot(path="/tmp/ohif-slide.png")

    box = await viewport.bounding_box()
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    deeper = set()
    for _ in range(12):  # the wheel zooms in, step by step, until a finer level loads
        await page.mouse.wheel(0, -300)
        await page.wait_for_timeout(400)
        deeper = {levels[uid] for uid in watch.frames() if uid in levels} - first
        if deeper and max(deeper) > max(first):
            break
    await page.wait_for_load_state("networkidle")
    assert deeper and max(deeper) > max(first), (first, deeper)
    await _wait_for_stain(viewport)
    await page.screenshot(path="/tmp/ohif-slide-zoomed.png")
    assert watch.failed("/dicomweb/", "/ohif/") == []
    assert watch.csp() == [] and await page.evaluate("window.__csp || []") == []
    assert watch.errors == []
    for request in (r for r in watch.requests if "/frames/" in r.url):
        assert (await request.all_headers())["authorization"] == f"Bearer {token}"
    await page.context.close()


async def test_without_a_session_ohif_goes_back_to_the_login(ohif_server, ohif_browser,
                                                             studies) -> None:
    page = await _page(ohif_browser, ohif_server)
    watch = Watch(page)
    base = str(ohif_server.make_url("/")).rstrip("/")
    await page.goto(f"/ohif/viewer?StudyInstanceUIDs={studies['CT']}&lng=zh")
    await expect(page).to_have_url(re.compile(re.escape(base) + r"/(#/login)?$"), timeout=30_000)
    await expect(page.locator("input[type=password]")).to_be_visible()
    refused = watch.failed("/dicomweb/")
    assert refused and {status for status, _ in refused} == {401}, watch.responses
    assert watch.failed("/ohif/") == []
    await page.context.close()


async def test_first_visit_bench_smoke(ohif_server, ohif_browser) -> None:
    """bench/first_visit.py in its quick mode (Yilian's page), on this module's server."""
    from bench.first_visit import context_options, measure, table

    base = str(ohif_server.make_url("/")).rstrip("/")

    async def new_context(compressed: bool) -> Any:
        return await ohif_browser.new_context(**context_options(base, compressed))

    results = await measure(new_context, base, quick=True)
    first = {name: tallies["yilian first"].total("page") for name, tallies in results.items()}
    assert 0 < first["compressed"] < first["identity"] / 1.5, first
    assert "| first | Yilian: page, scripts, language table |" in table(results)
