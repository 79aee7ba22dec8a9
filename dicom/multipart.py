"""multipart/related bodies (RFC 2387) as DICOMweb uses them: parsing STOW-RS uploads and
building WADO-RS responses."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass


class MultipartError(ValueError):
    """A body that is not well-formed multipart/related."""


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type header into its media type and (lower-cased name) parameters."""
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for item in split_unquoted(rest, ";"):
        name, sep, val = item.partition("=")
        if sep:
            params[name.strip().lower()] = val.strip().strip('"')
    return media.strip().lower(), params


def split_unquoted(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes; empty items dropped, items stripped."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s for s in (o.strip() for o in out) if s]


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """The parts of a complete multipart body; a truncated or malformed one raises."""
    if not boundary or len(boundary) > 70:
        raise MultipartError("the multipart boundary is missing or longer than 70 characters")
    delim = b"--" + boundary.encode("latin-1")
    start = body.find(delim)
    if start < 0:
        raise MultipartError("the body contains no multipart boundary")
    parts: list[Part] = []
    pos = start + len(delim)
    while True:
        if body.startswith(b"--", pos):
            return parts
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise MultipartError("the body ends inside a boundary line (truncated upload?)")
        pos = eol + 2
        head_end = body.find(b"\r\n\r\n", pos)
        if body.startswith(b"\r\n", pos):
            head_end = pos - 2
        if head_end < 0:
            raise MultipartError("a part has no end of headers (truncated upload?)")
        headers = _headers(body[pos:head_end])
        data_start = head_end + 4
        nxt = body.find(b"\r\n" + delim, data_start)
        if nxt < 0:
            raise MultipartError("the body ends before the closing boundary (truncated upload?)")
        parts.append(Part(headers, body[data_start:nxt]))
        pos = nxt + 2 + len(delim)
        if pos >= len(body):
            raise MultipartError("the body ends without the closing boundary (truncated?)")
        if not body.startswith((b"--", b"\r\n", b" ", b"\t"), pos):
            raise MultipartError("a boundary line is followed by unexpected bytes")


def _headers(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.decode("latin-1").split("\r\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"malformed part header line {line[:60]!r}")
        out[name.strip().lower()] = value.strip()
    return out


def new_boundary() -> str:
    """A boundary that will not occur in the parts."""
    return f"yilian-{uuid.uuid4().hex}"


def build_multipart(parts: Iterable[tuple[bytes, dict[str, str]]], boundary: str) -> bytes:
    """A multipart/related body from (body, headers) pairs."""
    chunks: list[bytes] = []
    for body, headers in parts:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        chunks += [f"--{boundary}\r\n{head}\r\n".encode("latin-1"), body, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("latin-1"))
    return b"".join(chunks)
