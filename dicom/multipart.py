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
    body: bytes | memoryview  # parsed parts are views into the request body, not copies

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
    """The parts of a complete multipart body; a truncated or malformed one raises.

    Each part's body is a read-only ``memoryview`` into ``body``: an upload is tens of
    megabytes, and copying it part by part cost as much as parsing the DICOM headers.
    """
    reader = MultipartReader(boundary, body)
    return reader.advance(final=True)


class MultipartReader:
    """Parts of a multipart body while it arrives (or all at once, ``parse_multipart``).

    The body goes into one buffer of its declared size; each part is handed out, as a
    read-only view into it, once its closing delimiter has arrived, so a server can work
    on the first parts of an upload while the rest is still on the wire. A malformed body
    raises ``MultipartError`` as soon as the bytes that make it so are in; ``finish`` raises
    the truncation errors.
    """

    def __init__(self, boundary: str, body: bytes | None = None, size: int = 0,
                 buffer: bytearray | None = None) -> None:
        if not boundary or len(boundary) > 70:
            raise MultipartError(
                "the multipart boundary is missing or longer than 70 characters")
        self._delim = b"--" + boundary.encode("latin-1")
        self._sep = b"\r\n" + self._delim
        if body is not None:
            self._buf: bytes | bytearray = body
            self._size = self._filled = len(body)
        else:  # the body arrives into ``buffer`` (at least ``size`` bytes) or a new one
            self._buf = buffer if buffer is not None and len(buffer) >= size else \
                bytearray(size)
            self._size, self._filled = size, 0
        self._view = memoryview(self._buf).toreadonly()
        self._pos = -1  # just after the last delimiter; -1 before the first one
        self._scan = 0  # where the search for the next delimiter resumes
        self._part: tuple[dict[str, str], int] | None = None  # headers, data start
        self._pending_check = False  # a delimiter whose following bytes are not checked
        self.done = False

    def feed(self, chunk: bytes) -> list[Part]:
        """Add the next bytes of the body; the parts they complete."""
        end = self._filled + len(chunk)
        if end > self._size:
            raise MultipartError("the body is longer than its declared length")
        assert isinstance(self._buf, bytearray)
        self._buf[self._filled:end] = chunk
        self._filled = end
        return self.advance(final=False)

    def finish(self) -> list[Part]:
        """The parts left once the whole body is in; raises if it is truncated."""
        return self.advance(final=True)

    def advance(self, final: bool) -> list[Part]:
        """Parts completed by the bytes in so far. Where more bytes could still make the body
        well-formed, wait for them unless ``final``, then the body is truncated."""
        body, end, delim = self._buf, self._filled, self._delim
        parts: list[Part] = []
        while not self.done:
            if self._pos < 0:
                start = body.find(delim, self._scan, end)
                if start < 0:
                    if final:
                        raise MultipartError("the body contains no multipart boundary")
                    self._scan = max(0, end - len(delim) + 1)
                    return parts
                self._pos = self._scan = start + len(delim)
                continue
            pos = self._pos
            if self._pending_check:
                if end - pos < 2 and not final:
                    return parts
                if not body.startswith((b"--", b"\r\n", b" ", b"\t"), pos, end):
                    raise MultipartError("a boundary line is followed by unexpected bytes")
                self._pending_check = False
            if self._part is None:
                if end - pos < 2 and not final:
                    return parts
                if body.startswith(b"--", pos, end):
                    self.done = True
                    return parts
                eol = body.find(b"\r\n", pos, end)
                if eol < 0:
                    if final:
                        raise MultipartError(
                            "the body ends inside a boundary line (truncated upload?)")
                    return parts
                head = eol + 2
                if end - head < 2 and not final:
                    return parts
                head_end = body.find(b"\r\n\r\n", head, end)
                if body.startswith(b"\r\n", head, end):
                    head_end = head - 2
                if head_end < 0:
                    if final:
                        raise MultipartError("a part has no end of headers (truncated upload?)")
                    return parts
                headers = _headers(bytes(body[head:head_end]))
                self._part = (headers, head_end + 4)
                self._scan = head_end + 4
            headers, data_start = self._part
            nxt = body.find(self._sep, self._scan, end)
            if nxt < 0:
                if final:
                    raise MultipartError(
                        "the body ends before the closing boundary (truncated upload?)")
                self._scan = max(data_start, end - len(self._sep) + 1)
                return parts
            parts.append(Part(headers, self._view[data_start:nxt]))
            self._part = None
            self._pos = self._scan = nxt + len(self._sep)
            if self._pos >= end and final:
                raise MultipartError("the body ends without the closing boundary (truncated?)")
            self._pending_check = True
        return parts


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
