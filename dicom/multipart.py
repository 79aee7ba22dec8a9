"""multipart/related bodies (RFC 2046, RFC 2387) as DICOMweb uses them: reading STOW-RS
uploads while they arrive, in memory bounded by what one read brings, and writing WADO-RS
responses part by part."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

# RFC 2046 5.1.1: 1 to 70 characters of this set, not ending with a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
#: The most bytes a part's boundary line and headers may take (a STOW part has two or three
#: short headers); beyond it the body is refused rather than buffered.
MAX_HEADER_BYTES = 16 * 1024


class MultipartError(ValueError):
    """A body that is not well-formed multipart/related."""


class TooManyParts(MultipartError):
    """A body with more parts than the reader was told to accept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body holds more than {limit} parts")
        self.limit = limit


@dataclass(slots=True)
class PartStart:
    """A part begins: its headers (lower-cased names)."""

    headers: dict[str, str]

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass(slots=True)
class PartData:
    """The next bytes of the current part: a read-only view into the chunk that brought them."""

    data: memoryview


class PartEnd:
    """The current part is complete."""


PART_END = PartEnd()
Event = PartStart | PartData | PartEnd


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def check_boundary(boundary: str) -> bytes:
    """The boundary as bytes; ``MultipartError`` unless it is 1-70 characters of RFC 2046's
    set (a boundary outside it, non-ASCII for one, cannot be matched in the body)."""
    if not _BOUNDARY.fullmatch(boundary):
        raise MultipartError(
            "the multipart boundary must be 1 to 70 characters of letters, digits and "
            "'()+_,-./:=? (RFC 2046), not ending with a space")
    return boundary.encode("ascii")


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
    reader = MultipartReader(boundary)
    parts: list[Part] = []
    chunks: list[bytes] = []
    for event in [*reader.feed(body), *reader.finish()]:
        if isinstance(event, PartStart):
            parts.append(Part(event.headers, b""))
            chunks = []
        elif isinstance(event, PartData):
            chunks.append(bytes(event.data))
        else:
            parts[-1].body = b"".join(chunks)
    return parts


# Where the reader is: before the first delimiter, just after a delimiter (its line not yet
# read), in a part's headers, in a part's data, after the closing delimiter.
_PREAMBLE, _DELIMITER, _HEADERS, _DATA, _DONE = range(5)


class MultipartReader:
    """A multipart body read as it arrives: ``feed`` each chunk, then ``finish``; each
    returns what the bytes so far make known (a part's start, its data, its end).

    Nothing is kept but the bytes that may still be the start of a delimiter (or a part's
    headers, up to ``MAX_HEADER_BYTES``), so memory does not grow with the body; the data of
    a part is handed out as views into the chunks it came in. Every byte is scanned a
    bounded number of times, so the work is linear in the body, however many parts it holds
    (``max_parts`` refuses more). A malformed body raises ``MultipartError`` as soon as the
    bytes that make it so are in; ``finish`` raises the truncation errors.
    """

    def __init__(self, boundary: str, max_parts: int | None = None) -> None:
        self._delim = b"--" + check_boundary(boundary)
        self._sep = b"\r\n" + self._delim
        self._max_parts = max_parts
        self._buf = b""  # the bytes not yet consumed
        self._scan = 0  # where in _buf the search for the end of headers resumes
        self._state = _PREAMBLE
        self._check = False  # the bytes after a (non-first) delimiter are not checked yet
        self.parts = 0

    @property
    def held(self) -> int:
        """Bytes kept for what follows (a possible delimiter, or headers not yet ended)."""
        return len(self._buf)

    @property
    def done(self) -> bool:
        """The closing delimiter has been read."""
        return self._state == _DONE

    def feed(self, chunk: bytes) -> list[Event]:
        """Add the next bytes of the body; the events they complete."""
        self._buf = self._buf + chunk if self._buf else chunk
        return self._advance(final=False)

    def finish(self) -> list[Event]:
        """The events left once the whole body is in; raises if it is truncated."""
        return self._advance(final=True)

    def _advance(self, final: bool) -> list[Event]:
        buf = self._buf
        view = memoryview(buf).toreadonly()
        end = len(buf)
        out: list[Event] = []
        i = 0
        while True:
            state = self._state
            if state == _DATA:
                k = buf.find(self._sep, i, end)
                if k < 0:
                    if final:
                        raise MultipartError(
                            "the body ends before the closing boundary (truncated upload?)")
                    safe = end - len(self._sep) + 1  # the rest may be a delimiter's start
                    if safe > i:
                        out.append(PartData(view[i:safe]))
                        i = safe
                    break
                if k > i:
                    out.append(PartData(view[i:k]))
                out.append(PART_END)
                i = k + len(self._sep)
                if i >= end and final:
                    raise MultipartError(
                        "the body ends without the closing boundary (truncated upload?)")
                self._state, self._check = _DELIMITER, True
            elif state == _PREAMBLE:
                k = buf.find(self._delim, i, end)
                if k < 0:
                    if final:
                        raise MultipartError("the body contains no multipart boundary")
                    i = max(i, end - len(self._delim) + 1)
                    break
                i = k + len(self._delim)
                self._state = _DELIMITER
            elif state == _DELIMITER:
                if end - i < 2 and not final:
                    break
                if self._check:
                    if not buf.startswith((b"--", b"\r\n", b" ", b"\t"), i, end):
                        raise MultipartError("a boundary line is followed by unexpected bytes")
                    self._check = False
                if buf.startswith(b"--", i, end):
                    self._state = _DONE
                    continue
                eol = buf.find(b"\r\n", i, end)
                if eol < 0:
                    self._too_long(end - i)
                    if final:
                        raise MultipartError(
                            "the body ends inside a boundary line (truncated upload?)")
                    break
                i, self._scan = eol + 2, eol + 2
                self._state = _HEADERS
            elif state == _HEADERS:
                if end - i < 2 and not final:
                    break
                if buf.startswith(b"\r\n", i, end):
                    head_end, data = i, i + 2
                else:
                    head_end = buf.find(b"\r\n\r\n", self._scan, end)
                    if head_end < 0:
                        self._too_long(end - i)
                        if final:
                            raise MultipartError(
                                "a part has no end of headers (truncated upload?)")
                        self._scan = max(i, end - 3)
                        break
                    self._too_long(head_end - i)
                    data = head_end + 4
                self.parts += 1
                if self._max_parts is not None and self.parts > self._max_parts:
                    raise TooManyParts(self._max_parts)
                out.append(PartStart(_headers(buf[i:head_end])))
                i = data
                self._state = _DATA
            else:  # the epilogue is ignored
                i = end
                break
        self._buf = buf[i:] if i < end else b""
        self._scan = max(0, self._scan - i)
        return out

    @staticmethod
    def _too_long(size: int) -> None:
        if size > MAX_HEADER_BYTES:
            raise MultipartError(
                f"a part's boundary line and headers take more than {MAX_HEADER_BYTES} bytes")


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


def part_head(headers: dict[str, str], boundary: str, first: bool) -> bytes:
    """The delimiter and headers that open a part (after the previous part's data)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (b"" if first else b"\r\n") + f"--{boundary}\r\n{head}\r\n".encode("latin-1")


def closing(boundary: str, first: bool = False) -> bytes:
    """The closing delimiter (after the last part's data, or alone)."""
    return (b"" if first else b"\r\n") + f"--{boundary}--\r\n".encode("latin-1")


def build_multipart(parts: Iterable[tuple[bytes, dict[str, str]]], boundary: str) -> bytes:
    """A multipart/related body from (body, headers) pairs."""
    chunks: list[bytes] = []
    for n, (body, headers) in enumerate(parts):
        chunks += [part_head(headers, boundary, n == 0), body]
    chunks.append(closing(boundary, first=not chunks))
    return b"".join(chunks)
