"""The JSON codec socket.io frames use: orjson, with the standard library as fallback.

Every relayed ``signal`` is decoded once and encoded once; orjson does both several times
faster than the ``json`` module (bench/signalling_bench.py). Integers beyond 64 bits are read
as floats, as a browser's ``JSON.parse`` reads them. Encoding falls back to the standard
library for the rare value orjson does not take.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(text: str | bytes, **_: Any) -> Any:
    """Decode JSON text (keyword arguments of ``json.loads`` are accepted and ignored)."""
    return orjson.loads(text)


def dumps(value: Any, **_: Any) -> str:
    """Compact JSON text (keyword arguments of ``json.dumps`` are accepted and ignored)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
