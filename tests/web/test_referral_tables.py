"""The referral screens' language tables: every text key and term group the referral code asks
for exists in both languages, and the code holds no Chinese of its own."""

from __future__ import annotations

import re

import pytest

from yilian.web import LANGUAGES, WEB_DIR, locale_tables

JS = WEB_DIR / "static" / "js"
FILES = [f"views/{n}.js" for n in ("referrals", "referral-form", "referral", "followups", "oncall")] + [
    p.relative_to(JS).as_posix() for p in sorted((JS / "features").glob("referral-*.js"))]
# Any "namespace.key" string literal (direct t() calls and the keys chosen by a condition).
LITERAL = re.compile(r"""["'`]([a-z_]+)\.([a-z0-9_]+)["'`]""")
PREFIX = re.compile(r"""\bt\(\s*`([a-z_]+)\.([a-z0-9_]*)\$\{""")  # t(`referrals.action_${a}`)
TERM = re.compile(r"""\bterm\(\s*["']([a-z_]+)["']""")
HAN = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")


def _source(path: str) -> str:
    return (JS / path).read_text(encoding="utf-8")


def test_the_referral_files_are_all_checked() -> None:
    assert len(FILES) >= 12, FILES


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("path", FILES)
def test_every_key_and_term_group_asked_for_exists(path: str, language: str) -> None:
    tables = locale_tables(language)
    source = _source(path)
    literals = [(ns, key) for ns, key in LITERAL.findall(source) if ns in tables]
    missing = [f"{ns}.{key}" for ns, key in literals if key not in tables[ns]]
    assert missing == [], path
    for ns, prefix in PREFIX.findall(source):
        assert any(k.startswith(prefix) for k in tables[ns]), f"{path}: {ns}.{prefix}*"
    for group in TERM.findall(source):
        assert any(k.startswith(f"{group}_") for k in tables["terms"]), f"{path}: terms {group}_*"


def test_every_channel_point_and_interval_has_a_term() -> None:
    from yilian.server.clinic.referrals.workflow import INTERVALS, MILESTONES, STATES

    for language in LANGUAGES:
        terms = locale_tables(language)["terms"]
        names = {f"milestone_{m}" for ms in MILESTONES.values() for m in ms}
        names |= {f"interval_{name}" for ivs in INTERVALS.values() for name, *_ in ivs}
        names |= {f"green_channel_{c}" for c in MILESTONES} | {f"referral_status_{s}" for s in STATES}
        names |= {"direction_up", "direction_down"}
        assert sorted(names - set(terms)) == [], language


@pytest.mark.parametrize("path", FILES)
def test_no_chinese_literal_in_the_code(path: str) -> None:
    lines = [f"{n}: {line.strip()}" for n, line in enumerate(_source(path).splitlines(), 1) if HAN.search(line)]
    assert lines == [], path
