"""The web client's language tables (web/locales/<language>/<namespace>.json): both languages
say the same things, every error code the server (or the client itself) can send has a message,
and the client's code carries no text of its own (every visible string comes from the tables)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

from yilian.server.core.errors import YilianError
from yilian.web import DEFAULT_LANGUAGE, LANGUAGES, locale_bundle, locale_tables

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "web" / "locales"
JS = ROOT / "web" / "static" / "js"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# The one English entry written in Chinese: the language switch names the other language in
# that language ("中文"), as language pickers do.
ENDONYMS = {"common.other_language"}
SERVER_PACKAGES = ("server", "dicom", "signaling")


def _namespaces(language: str) -> dict[str, dict[str, str]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((LOCALES / language).glob("*.json"))}


def _entries(language: str) -> dict[str, str]:
    return {f"{ns}.{key}": text for ns, table in _namespaces(language).items()
            for key, text in table.items()}


def test_every_language_has_the_same_namespaces_and_keys() -> None:
    assert DEFAULT_LANGUAGE == "zh-CN" and set(LANGUAGES) == {"zh-CN", "en"}
    assert {p.name for p in LOCALES.iterdir() if p.is_dir()} == set(LANGUAGES)
    reference = _namespaces(DEFAULT_LANGUAGE)
    for language in LANGUAGES:
        tables = _namespaces(language)
        assert set(tables) == set(reference), language
        for ns, table in tables.items():
            missing = set(reference[ns]) - set(table)
            extra = set(table) - set(reference[ns])
            assert not missing and not extra, f"{language}/{ns}.json: missing {sorted(missing)}, extra {sorted(extra)}"


def test_tables_are_flat_non_empty_strings_with_plain_keys() -> None:
    for language in LANGUAGES:
        for path in sorted((LOCALES / language).glob("*.json")):
            table = json.loads(path.read_text(encoding="utf-8"))
            assert isinstance(table, dict) and table, path
            for key, text in table.items():
                assert re.fullmatch(r"\w+", key, re.ASCII), f"{path}: key {key!r}"
                assert isinstance(text, str) and text.strip(), f"{path}: {key} is empty"
                assert text == text.strip(), f"{path}: {key} has surrounding spaces"


def test_placeholders_match_between_languages() -> None:
    reference = _entries(DEFAULT_LANGUAGE)
    for language in LANGUAGES:
        for key, text in _entries(language).items():
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(reference[key])), \
                f"{language} {key}: {text!r} vs {reference[key]!r}"


def test_english_tables_have_no_chinese_and_chinese_tables_are_chinese() -> None:
    for key, text in _entries("en").items():
        if key not in ENDONYMS:
            assert not CJK.search(text), f"en {key}: {text!r}"
    zh = _entries("zh-CN")
    for key in ENDONYMS:
        assert not CJK.search(zh[key]), f"zh-CN {key} names English in English"
    # Chinese screens in Chinese: an entry with letters only is a code or a name (ID, ENT, CT).
    latin_only = [k for k, text in zh.items() if not CJK.search(text)
                  and re.search(r"[a-z]{3}", PLACEHOLDER.sub("", text))
                  and k not in ENDONYMS and not k.startswith("terms.specialty_")]
    assert latin_only == [], latin_only


def test_the_served_bundle_is_every_table() -> None:
    for language in LANGUAGES:
        assert json.loads(locale_bundle(language)) == locale_tables(language) == _namespaces(language)


def _server_error_codes() -> set[str]:
    """Every error code the server can send: the YilianError hierarchy's codes, codes passed
    where errors are raised or answered, and the HTTP status fallbacks of the middleware."""
    for package in SERVER_PACKAGES:
        pkg = importlib.import_module(f"yilian.{package}")
        for info in pkgutil.walk_packages(pkg.__path__, f"yilian.{package}."):
            if ".migrations." not in info.name:
                importlib.import_module(info.name)
    codes: set[str] = set()
    todo: list[type[YilianError]] = [YilianError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    from yilian.server.core import middleware

    codes.update(middleware._HTTP_CODES.values())  # noqa: SLF001 - the mapping itself is the fact
    literal = re.compile(r"""\bcode\s*=\s*["']([a-z_]+)["']|error_(?:body|response)\((?:\s*\d+\s*,)?\s*["']([a-z_]+)["']"""
                         r"""|_HTTP_CODES\.get\([^,]+,\s*["']([a-z_]+)["']\)""")
    formatted = re.compile(r"""\bcode\s*=\s*f["']\{(\w+)\}([a-z_]*)["']""")
    for package in SERVER_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            for match in literal.finditer(source):
                codes.add(next(g for g in match.groups() if g))
            for var, suffix in formatted.findall(source):
                # code=f"{what}_not_found": the values the variable is assigned in that file.
                for assignment in re.findall(rf"^\s*{var}\s*=\s*(.+)$", source, re.M):
                    for value in re.findall(r"""["']([a-z_]+)["']""", assignment):
                        codes.add(value + suffix)
    return codes


def _client_error_codes() -> set[str]:
    """The codes the client gives errors that have no message of their own: api.js's
    (no connection, a non-JSON error answer) and i18n.js's fallback."""
    api = (JS / "api.js").read_text(encoding="utf-8")
    codes = set(re.findall(r"""new ApiError\(\s*0\s*,\s*["']([a-z_]+)["']""", api))
    codes.update(re.findall(r"""\|\|\s*["']([a-z_]+)["']""", api))  # e.code || "http_error"
    codes.update(re.findall(r"""t\(["']errors\.([a-z_]+)["']\)""", (JS / "i18n.js").read_text(encoding="utf-8")))
    return codes


def test_every_error_code_has_a_message_in_every_language() -> None:
    codes = _server_error_codes() | _client_error_codes()
    # The collection itself works: codes from classes, raise sites, f-strings and the client.
    assert {"invalid_transition", "slot_taken", "invalid_credentials", "method_not_allowed",
            "series_not_found", "room_full", "audit_unavailable", "network_error",
            "http_error"} <= codes
    for language in LANGUAGES:
        errors = _namespaces(language)["errors"]
        missing = sorted(code for code in codes if code not in errors)
        assert not missing, f"{language}/errors.json has no message for {missing}"
        assert "unknown" in errors and "field_line" in errors


def test_index_html_is_chinese_by_default_and_has_no_text_of_its_own() -> None:
    html = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html
    # Without JavaScript no table can load: the <noscript> message is in the default language.
    assert CJK.search(re.search(r"<noscript>(.*?)</noscript>", html, re.S).group(1))
    outside = re.sub(r"<noscript>.*?</noscript>", "", html, flags=re.S)
    assert not CJK.search(outside)
    for key in re.findall(r'data-i18n="([\w.]+)"', html):
        ns, _, name = key.partition(".")
        for language in LANGUAGES:
            assert name in _namespaces(language)[ns], f"{language}: {key}"


def _files_with_cjk() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in JS.rglob("*.js")
                  if CJK.search(p.read_text(encoding="utf-8")))


def test_no_chinese_text_in_the_client_code() -> None:
    """Every visible string comes from the tables: no CJK character in any client module."""
    assert _files_with_cjk() == []
