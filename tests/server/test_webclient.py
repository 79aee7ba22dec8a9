"""The web client's files over real HTTP: compressed when accepted, revalidated by ETag, the
built OHIF Viewer under /ohif/ with its own CSP, and clear 404s for what is not there."""

from __future__ import annotations

import gzip
import hashlib

import brotli
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests.conftest import Api
from yilian.server.core.security import CSP, OHIF_CSP
from yilian.server.webclient import add_ohif_routes
from yilian.web import WEB_DIR
from yilian.web.build import OHIF_DIR, ensure_built


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    ensure_built()


def _bundle() -> str:
    return next(OHIF_DIR.glob("app.bundle.*.js")).name


async def _get(api: Api, path: str, encoding: str = "", **headers: str
               ) -> tuple[int, CIMultiDict[str], bytes]:
    """Raw bytes as sent (no automatic decompression)."""
    async with ClientSession(auto_decompress=False) as http, http.get(
            api.url(path), headers={"Accept-Encoding": encoding, **headers},
            allow_redirects=False) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def _decode(headers: CIMultiDict[str], body: bytes) -> bytes:
    coding = headers.get("Content-Encoding", "identity")
    return {"gzip": gzip.decompress, "br": brotli.decompress,
            "identity": lambda b: b}[coding](body)


async def test_the_page_and_static_files_are_compressed_and_revalidated(api: Api) -> None:
    raw = (WEB_DIR / "static" / "js" / "app.js").read_bytes()
    sizes = {}
    for accept, coding in (("gzip, deflate, br", "br"), ("gzip", "gzip"), ("", None),
                           ("br;q=0, gzip", "gzip"), ("identity", None)):
        status, headers, body = await _get(api, "/static/js/app.js", accept)
        assert status == 200
        assert headers.get("Content-Encoding") == coding, accept
        assert headers["Vary"] == "Accept-Encoding" and headers["Cache-Control"] == "no-cache"
        assert headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert _decode(headers, body) == raw
        sizes[coding] = len(body)
        # the ETag names this coding's bytes: a revalidation costs a 304 and no body
        status, again, body = await _get(api, "/static/js/app.js", accept,
                                         **{"If-None-Match": headers["ETag"]})
        assert status == 304 and body == b"" and again["ETag"] == headers["ETag"]
    assert sizes["br"] < sizes["gzip"] < sizes[None] / 2
    status, headers, body = await _get(api, "/", "gzip")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert b'<script type="module" src="/static/js/app.js">' in gzip.decompress(body)
    assert headers["Content-Security-Policy"] == CSP
    # a stale ETag gets the whole file again
    status, _, body = await _get(api, "/static/js/app.js", "gzip", **{"If-None-Match": '"x"'})
    assert status == 200 and gzip.decompress(body) == raw


async def test_static_images_and_vendor_files(api: Api) -> None:
    status, headers, body = await _get(api, "/static/img/logo.svg", "gzip")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert _decode(headers, body) == (WEB_DIR / "static" / "img" / "logo.svg").read_bytes()
    # socket.io-client, built from npm, where web/static/js/features/call.js imports it
    status, headers, body = await _get(
        api, "/static/vendor/socket.io-client/socket.io.esm.min.js", "br")
    assert status == 200 and headers["Content-Encoding"] == "br"
    assert b"export" in brotli.decompress(body)


@pytest.mark.parametrize("path", ["/static/", "/static/js", "/static/js/nothing.js",
                                  "/static/%2e%2e/index.html", "/static/..%2Fbuild.py",
                                  "/static/js/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
                                  "/static/.hidden", "/ohif/%2e%2e/build.py",
                                  "/ohif/..%2F..%2Fpyproject.toml", "/ohif/nothing.js",
                                  "/ohif/assets/nothing.png", "/ohif/.gitignore"])
async def test_what_is_not_a_served_file_is_404(api: Api, path: str) -> None:
    status, headers, body = await _get(api, path)
    assert status == 404, (path, body[:200])
    assert b"[tool." not in body and b"import" not in body


async def test_ohif_page_routes_and_csp(api: Api) -> None:
    index = (OHIF_DIR / "index.html").read_bytes()
    for path in ("/ohif/", "/ohif/viewer", "/ohif/microscopy", "/ohif/viewer/yilian"):
        status, headers, body = await _get(api, path + "?StudyInstanceUIDs=1.2.3&lng=zh", "br")
        assert status == 200, path
        assert _decode(headers, body) == index
        assert headers["Content-Type"] == "text/html"
        assert headers["Cache-Control"] == "no-cache"
        assert headers["Content-Security-Policy"] == OHIF_CSP
        assert headers["X-Frame-Options"] == "DENY"
    assert "'unsafe-eval'" in OHIF_CSP and "'unsafe-inline'" not in OHIF_CSP.split("style-src")[0]
    status, headers, _ = await _get(api, "/ohif")
    assert status == 301 and headers["Location"] == "/ohif/"
    # the rest of the site keeps its strict policy
    for path in ("/", "/static/js/app.js", "/locales/zh-CN.json", "/api/health"):
        _, headers, _ = await _get(api, path)
        assert headers["Content-Security-Policy"] == CSP, path
        assert "unsafe-eval" not in headers["Content-Security-Policy"]


async def test_ohif_bundles_are_compressed_and_cached_for_good(api: Api) -> None:
    bundle = _bundle()
    raw = (OHIF_DIR / bundle).read_bytes()
    sizes = {}
    for accept in ("br, gzip", "gzip", ""):
        status, headers, body = await _get(api, f"/ohif/{bundle}", accept)
        assert status == 200
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["Content-Type"] == "text/javascript"
        assert headers["Vary"] == "Accept-Encoding"
        assert _decode(headers, body) == raw
        sizes[headers.get("Content-Encoding")] = len(body)
        status, _, body = await _get(api, f"/ohif/{bundle}", accept,
                                     **{"If-None-Match": headers["ETag"]})
        assert status == 304 and body == b""
    assert sizes["br"] < sizes["gzip"] < sizes[None] / 3
    wasm = next(OHIF_DIR.glob("*.wasm")).name
    status, headers, body = await _get(api, f"/ohif/{wasm}", "gzip")
    assert status == 200 and headers["Content-Type"] == "application/wasm"
    assert _decode(headers, body) == (OHIF_DIR / wasm).read_bytes()
    # unhashed files are revalidated every time: the configuration first of all
    for path in ("app-config.js", "yilian-init.js", "app.bundle.css",
                 "dicom-microscopy-viewer/dicomMicroscopyViewer.min.js", "assets/favicon.ico"):
        status, headers, _ = await _get(api, f"/ohif/{path}", "gzip")
        assert status == 200 and headers["Cache-Control"] == "no-cache", path


async def test_ohif_configuration_reads_the_session_and_holds_no_secret(api: Api) -> None:
    status, headers, body = await _get(api, "/ohif/app-config.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript"
    config = body.decode()
    assert 'sessionStorage.getItem(TOKEN_KEY)' in config and '"yilian.token"' in config
    assert 'window.location.origin + "/dicomweb"' in config
    assert "showStudyList: false" in config and 'investigationalUseDialog: { option: "never" }' \
        in config
    doctor = await api.login("expert")
    assert doctor.token not in config


async def test_ohif_not_built_is_a_clear_404(tmp_path) -> None:
    app = web.Application()
    add_ohif_routes(app, tmp_path / "nothing")
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with ClientSession() as http:
            for path in ("/ohif/", "/ohif/viewer?StudyInstanceUIDs=1.2", "/ohif/app-config.js"):
                async with http.get(server.make_url(path)) as resp:
                    assert resp.status == 404, path
                    assert resp.content_type == "text/html"
                    text = await resp.text()
                    assert "python -m yilian.web.build" in text and "pip install -e ." in text
    finally:
        await server.close()


async def test_locale_tables_are_compressed(api: Api) -> None:
    status, headers, body = await _get(api, "/locales/zh-CN.json", "gzip")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    table = gzip.decompress(body)
    status, again, _ = await _get(api, "/locales/zh-CN.json", "gzip",
                                  **{"If-None-Match": headers["ETag"]})
    assert status == 304
    assert hashlib.sha256(table).hexdigest()[:32] in headers["ETag"]
