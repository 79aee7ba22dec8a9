"""The booking and call screens' language tables: every key the code asks for exists, in both
languages, and the code itself holds no Chinese text (it all comes from the tables)."""

from __future__ import annotations

import re

import pytest

from yilian.web import LANGUAGES, WEB_DIR, locale_tables

NAMESPACES = ("experts", "slots", "availability", "call")
FILES = [f"views/{name}.js" for name in ("experts", "slots", "availability", "call")] + [
    f"features/{name}.js" for name in ("call", "video", "call-studies")]
JS = WEB_DIR / "static" / "js"
KEY = re.compile(r"""\bt\(\s*["'`]([a-z_]+)\.([a-z0-9_]+)["'`]""")
PREFIX = re.compile(r"""\bt\(\s*`([a-z_]+)\.([a-z0-9_]+)\$\{""")  # t(`call.peer_state_${state}`)
HAN = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _source(path: str) -> str:
    return (JS / path).read_text(encoding="utf-8")


def test_both_languages_have_the_same_keys() -> None:
    tables = {language: locale_tables(language) for language in LANGUAGES}
    for namespace in NAMESPACES:
        zh, en = tables["zh-CN"][namespace], tables["en"][namespace]
        assert sorted(zh) == sorted(en), namespace
        assert all(text.strip() for text in [*zh.values(), *en.values()]), namespace
        # Placeholders agree, so no language loses a value.
        for key in zh:
            assert set(re.findall(r"\{(\w+)\}", zh[key])) == set(re.findall(r"\{(\w+)\}", en[key])), key


def test_chinese_texts_are_chinese_and_english_texts_are_not() -> None:
    zh, en = locale_tables("zh-CN"), locale_tables("en")
    for namespace in NAMESPACES:
        for key, text in zh[namespace].items():
            if re.sub(r"\{\w+\}|[\s\W\d]", "", text):
                assert HAN.search(text), f"{namespace}.{key}: {text!r}"
        for key, text in en[namespace].items():
            assert not HAN.search(text), f"{namespace}.{key}: {text!r}"


@pytest.mark.parametrize("path", FILES)
def test_every_key_asked_for_exists(path: str) -> None:
    tables = locale_tables("zh-CN")
    source = _source(path)
    keys = KEY.findall(source)
    assert keys, path
    missing = [f"{ns}.{key}" for ns, key in keys if key not in tables.get(ns, {})]
    assert missing == [], path
    for ns, prefix in PREFIX.findall(source):
        assert any(key.startswith(prefix) for key in tables[ns]), f"{ns}.{prefix}*"


@pytest.mark.parametrize("path", FILES)
def test_no_chinese_literal_in_the_code(path: str) -> None:
    lines = [f"{n}: {line.strip()}" for n, line in enumerate(_source(path).splitlines(), 1)
             if HAN.search(line)]
    assert lines == [], path
