"""CSV files for Excel (audit log, teaching attendance, imported accounts' passwords): UTF-8
with a byte order mark, CRLF lines, formula cells defused."""

from __future__ import annotations

from yilian.server.core.csvfile import defuse, to_csv


def test_csv_has_bom_crlf_and_defuses_formulas() -> None:
    data = to_csv(("name", "minutes"), [("张三", 3), ("=HYPERLINK(1)", 1), ("a,b", None),
                                        ("+86 138", "-1"), ("@SUM(A1)", "\tx"), ("\rx", "a=b")])
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.split("\r\n") == ["name,minutes", "张三,3", "'=HYPERLINK(1),1", '"a,b",',
                                  "'+86 138,'-1", "'@SUM(A1),'\tx", "\"'\rx\",a=b", ""]
    assert defuse(None) == "" and defuse(0) == "0" and defuse("-") == "'-"
