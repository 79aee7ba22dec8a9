"""CSV files for Excel, the one way every export writes them: UTF-8 with a byte order mark (so
Excel on a Chinese Windows reads it as UTF-8, not GBK), CRLF line ends, and any cell a
spreadsheet would run as a formula (one starting with = + - @, a tab or a carriage return)
defused with a leading apostrophe, which Excel shows as text and does not display."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

#: What a spreadsheet takes for the start of a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: object) -> str:
    """The cell's text (None: empty), with an apostrophe before a formula's first character."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The header and rows as a CSV file for Excel (see the module's description)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([defuse(v) for v in header])
    for row in rows:
        writer.writerow([defuse(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
