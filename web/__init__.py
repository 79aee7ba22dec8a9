"""The browser client: static files served by the Yilian server, and its language tables.

This file makes ``web/`` a package so that a wheel carries the client with it.

Language tables live in ``web/locales/<language>/<namespace>.json``: one file per language and
screen area, the same keys in every language. ``locale_bundle`` merges one language's files into
the single document the browser loads (``/locales/<language>.json``): ``{namespace: {key: text}}``.
"""

from __future__ import annotations

import json
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
LOCALES_DIR = WEB_DIR / "locales"
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"


def locale_tables(language: str) -> dict[str, dict[str, str]]:
    """Every namespace table of one language, by namespace (the file's stem)."""
    if language not in LANGUAGES:
        raise KeyError(language)
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((LOCALES_DIR / language).glob("*.json"))}


def locale_bundle(language: str) -> bytes:
    """The language's tables as one compact JSON document (UTF-8)."""
    return json.dumps(locale_tables(language), ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True).encode()
