"""The browser client's routes: the page, its static files and its language tables."""

from __future__ import annotations

import hashlib

from aiohttp import web

from yilian.web import LANGUAGES, WEB_DIR, locale_bundle


def add_web_client(app: web.Application) -> None:
    """``/`` (the page), ``/static/`` (its files) and ``/locales/<language>.json``."""
    index = WEB_DIR / "index.html"
    if not index.exists():
        return

    async def serve_index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(index)

    app.router.add_get("/", serve_index)
    app.router.add_static("/static/", WEB_DIR / "static", show_index=False)
    add_locale_routes(app)


def add_locale_routes(app: web.Application) -> None:
    """Each language's tables, merged once at startup, revalidated by ETag on every load."""
    bundles = {language: locale_bundle(language) for language in LANGUAGES}
    etags = {language: hashlib.sha256(body).hexdigest()[:32] for language, body in bundles.items()}

    async def serve_locale(request: web.Request) -> web.Response:
        language = request.match_info["language"]
        if language not in bundles:
            raise web.HTTPNotFound(text=f"no language table {language!r}")
        etag = f'"{etags[language]}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=bundles[language], headers=headers,
                            content_type="application/json", charset="utf-8")

    app.router.add_get("/locales/{language}.json", serve_locale)
