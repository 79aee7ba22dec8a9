"""The browser client's routes: the page, its static files, its language tables and the OHIF
Viewer built by the install (``yilian.web.build``) under ``/ohif/``.

Everything here is sent compressed when the browser accepts it and is revalidated by ETag, so
a village link downloads each file once: ``/`` and ``/static/`` are compressed once in memory
(they are small and change with the checkout); OHIF's files have gzip and brotli siblings made
by the build, and its content-hashed bundles are cached for a year.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import brotli
from aiohttp import hdrs, web

from yilian.web import LANGUAGES, WEB_DIR, locale_bundle
from yilian.web.build import BROTLI_QUALITY, OHIF_DIR

#: Sent compressed (text); images and fonts are compressed already.
_TEXT = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
         ".html": "text/html", ".json": "application/json", ".map": "application/json",
         ".svg": "image/svg+xml", ".txt": "text/plain"}
_MEMORY_LIMIT = 4 << 20  # larger files go out as they are on disk
#: OHIF's content-hashed file names: ``1602.bundle.94f12cceab7c2762.js``, ``0ddf166f7a343eda.wasm``
_HASHED = re.compile(r"(?:^|\.)[0-9a-f]{16}\.(?:js|wasm|woff2|css)$")
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"
_OHIF_TYPES = {".wasm": "application/wasm", ".jsonc": "application/json",
               ".js": "text/javascript", ".mjs": "text/javascript"}

NOT_BUILT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>OHIF 未构建 / OHIF is not built</title></head>
<body><h1>OHIF 阅片器尚未构建</h1>
<p>安装时会自动构建：在源代码目录运行 <code>pip install -e .</code>，或运行
<code>python -m yilian.web.build</code>。</p>
<h1 lang="en">The OHIF Viewer is not built</h1>
<p lang="en">The install builds it: run <code>pip install -e .</code> in the source folder, or
<code>python -m yilian.web.build</code>.</p></body></html>
"""


def add_web_client(app: web.Application, ohif_dir: Path = OHIF_DIR) -> None:
    """``/`` (the page), ``/static/`` (its files), ``/locales/<language>.json`` and ``/ohif/``."""
    index = WEB_DIR / "index.html"
    if not index.exists():
        return
    files = _CompressedFiles()

    async def serve_index(request: web.Request) -> web.StreamResponse:
        return await files.respond(request, index)

    async def serve_static(request: web.Request) -> web.StreamResponse:
        path = await asyncio.to_thread(_inside, WEB_DIR / "static", request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        return await files.respond(request, path)

    app.router.add_get("/", serve_index)
    app.router.add_get("/static/{path:.+}", serve_static)
    add_locale_routes(app)
    add_ohif_routes(app, ohif_dir)


def add_locale_routes(app: web.Application) -> None:
    """Each language's tables, merged and compressed once at startup, revalidated by ETag."""
    tables = {language: _pack(locale_bundle(language), (0, 0)) for language in LANGUAGES}

    async def serve_locale(request: web.Request) -> web.StreamResponse:
        language = request.match_info["language"]
        if language not in tables:
            raise web.HTTPNotFound(text=f"no language table {language!r}")
        return _send(request, tables[language], "application/json")

    app.router.add_get("/locales/{language}.json", serve_locale)


def add_ohif_routes(app: web.Application, root: Path) -> None:
    """``/ohif/``: a file of the built viewer if it exists, else its page (the viewer's own
    routes, ``/ohif/viewer``, ``/ohif/microscopy``); a clear 404 page while it is not built."""

    async def redirect(_: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("/ohif/")

    async def serve(request: web.Request) -> web.StreamResponse:
        index = root / "index.html"
        if not await asyncio.to_thread(index.is_file):
            return web.Response(status=404, text=NOT_BUILT, content_type="text/html",
                                headers={"Cache-Control": _REVALIDATE})
        tail = request.match_info["path"]
        path = await asyncio.to_thread(_inside, root, tail) if tail else index
        if path is None:
            last = tail.rsplit("/", 1)[-1]
            if "." in last:  # a missing file, not one of the viewer's routes
                raise web.HTTPNotFound()
            path = index
        response = web.FileResponse(path)
        cacheable = path.parent == root and _HASHED.search(path.name)
        response.headers["Cache-Control"] = _IMMUTABLE if cacheable else _REVALIDATE
        response.headers[hdrs.VARY] = hdrs.ACCEPT_ENCODING
        if path.suffix in _OHIF_TYPES:
            response.content_type = _OHIF_TYPES[path.suffix]
        return response

    app.router.add_get("/ohif", redirect)
    app.router.add_get("/ohif/{path:.*}", serve)


def _inside(root: Path, tail: str) -> Path | None:
    """The regular file ``tail`` names under ``root``; None for anything else (a folder, a
    missing file, a hidden name, a path leaving ``root``)."""
    if any(part.startswith(".") for part in tail.split("/")) or "\\" in tail or "\0" in tail:
        return None
    base = root.resolve()
    try:
        path = (base / tail).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def _accepted(request: web.Request) -> set[str]:
    """The content codings the client accepts (``q=0`` means refused)."""
    codings = set()
    for item in request.headers.get(hdrs.ACCEPT_ENCODING, "").lower().split(","):
        name, _, params = item.strip().partition(";")
        q = params.strip().removeprefix("q=")
        try:
            refused = bool(params) and float(q) == 0
        except ValueError:
            refused = False
        if name and not refused:
            codings.add(name.strip())
    return codings


@dataclass
class _Variant:
    body: bytes
    etag: str


@dataclass
class _Entry:
    stamp: tuple[int, int]
    variants: dict[str, _Variant] = field(default_factory=dict)


class _CompressedFiles:
    """The client's text files, read and compressed once per version of each file; ETags from
    their content, one per coding. Other files (images, big ones) go out as FileResponse."""

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}

    async def respond(self, request: web.Request, path: Path) -> web.StreamResponse:
        content_type = _TEXT.get(path.suffix)
        entry = None if content_type is None else await asyncio.to_thread(self._entry, path)
        if content_type is None or entry is None:
            return web.FileResponse(path, headers={"Cache-Control": _REVALIDATE})
        return _send(request, entry, content_type)


    def _entry(self, path: Path) -> _Entry | None:
        """The file's compressed forms, made again when it changed; None when it is too big.
        (In a worker thread.)"""
        st = path.stat()
        if st.st_size > _MEMORY_LIMIT:
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        entry = self._entries.get(path)
        if entry is None or entry.stamp != stamp:
            entry = self._entries[path] = _load(path, stamp)
        return entry


def _send(request: web.Request, entry: _Entry, content_type: str) -> web.Response:
    """The entry in the best coding the client accepts; 304 when it has that version."""
    accepted = _accepted(request)
    coding = next((c for c in ("br", "gzip") if c in entry.variants and c in accepted),
                  "identity")
    variant = entry.variants[coding]
    headers = {"ETag": variant.etag, "Cache-Control": _REVALIDATE,
               hdrs.VARY: hdrs.ACCEPT_ENCODING}
    if coding != "identity":
        headers[hdrs.CONTENT_ENCODING] = coding
    if variant.etag in _etags(request.headers.get(hdrs.IF_NONE_MATCH, "")):
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if content_type.startswith("text/") or "json" in content_type else None
    return web.Response(body=variant.body, headers=headers, content_type=content_type,
                        charset=charset)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _load(path: Path, stamp: tuple[int, int]) -> _Entry:
    return _pack(path.read_bytes(), stamp)


def _pack(raw: bytes, stamp: tuple[int, int]) -> _Entry:
    """The bytes with their gzip and brotli forms (where smaller), each with its ETag."""
    digest = hashlib.sha256(raw).hexdigest()[:32]
    entry = _Entry(stamp, {"identity": _Variant(raw, f'"{digest}"')})
    packed = {"gzip": gzip.compress(raw, compresslevel=9, mtime=0),
              "br": brotli.compress(raw, quality=BROTLI_QUALITY)}
    for coding, body in packed.items():
        if len(body) < len(raw):
            entry.variants[coding] = _Variant(body, f'"{digest}-{coding}"')
    return entry
