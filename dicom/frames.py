"""Locating frames inside a stored file, so a frame is read without touching the others.

At ingest the pixel data is indexed once: native data by arithmetic (frame *i* starts at
``offset + i * frame_length``), encapsulated data by walking its items and grouping fragments
into frames with the Basic or Extended Offset Table, or one fragment per frame, or codestream
start markers. Retrieval then seeks straight to the bytes of the frames asked for.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

FrameRanges = list[list[list[int]]]  # per frame: [[file offset, length], ...fragments]

ITEM = 0xE000FFFE  # (FFFE,E000) read as a little-endian uint32
SEQ_DELIMITER = 0xE0DDFFFE
# Bytes a fragment starts with when it opens a new frame: JPEG SOI, JPEG 2000 codestream
# (SOC+SIZ), JP2 box header, and the RLE header's segment count (1..15 little-endian).
_FRAME_STARTS = (b"\xff\xd8", b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP")


class FrameIndexError(ValueError):
    """The pixel data cannot be split into the number of frames the header declares."""


def native_ranges(value_offset: int, value_length: int, frame_length: int,
                  number_of_frames: int) -> FrameRanges:
    """Frame ranges of native (uncompressed) pixel data."""
    if frame_length <= 0:
        raise FrameIndexError("the image has no pixels (Rows or Columns is 0)")
    needed = frame_length * number_of_frames
    if value_length < needed:
        raise FrameIndexError(
            f"pixel data holds {value_length} bytes but {number_of_frames} frame(s) of "
            f"{frame_length} bytes need {needed}")
    return [[[value_offset + i * frame_length, frame_length]] for i in range(number_of_frames)]


def _items(value: bytes | memoryview, value_offset: int) -> list[tuple[int, int]]:
    """(file offset of item data, length) of every item of an encapsulated value."""
    out: list[tuple[int, int]] = []
    pos, end = 0, len(value)
    while pos + 8 <= end:
        tag, length = struct.unpack_from("<II", value, pos)
        if tag == SEQ_DELIMITER:
            break
        if tag != ITEM:
            raise FrameIndexError(f"expected an item tag at byte {pos} of the pixel data")
        if length == 0xFFFFFFFF or pos + 8 + length > end:
            raise FrameIndexError("a pixel data fragment runs past the end of the data")
        out.append((value_offset + pos + 8, length))
        pos += 8 + length
    if not out:
        raise FrameIndexError("encapsulated pixel data without a Basic Offset Table item")
    return out


def encapsulated_ranges(value: bytes | memoryview, value_offset: int, number_of_frames: int,
                        extended_offsets: Sequence[int] | None = None) -> FrameRanges:
    """Frame ranges of encapsulated pixel data read from ``value`` at ``value_offset``."""
    items = _items(value, value_offset)
    bot_offset, bot_length = items[0]
    fragments = items[1:]
    if not fragments:
        raise FrameIndexError("encapsulated pixel data holds no fragments")
    # Fragment positions relative to the first fragment's item tag, as offset tables count.
    first_tag = fragments[0][0] - 8
    rel = [f[0] - 8 - first_tag for f in fragments]
    starts: list[int] | None = None
    if number_of_frames == 1:
        starts = [0]
    elif extended_offsets:
        starts = _starts_from_offsets(rel, list(extended_offsets))
    elif bot_length:
        bot = value[bot_offset - value_offset: bot_offset - value_offset + bot_length]
        offsets = list(struct.unpack(f"<{bot_length // 4}I", bot[: bot_length // 4 * 4]))
        starts = _starts_from_offsets(rel, offsets)
    elif len(fragments) == number_of_frames:
        starts = list(range(number_of_frames))
    if starts is None:
        starts = [i for i, (_, length) in enumerate(fragments) if _opens_frame(value,
                  fragments[i][0] - value_offset, length)]
    if len(starts) != number_of_frames or starts[0] != 0:
        raise FrameIndexError(
            f"found {len(starts)} frame(s) in the encapsulated pixel data, the header declares "
            f"{number_of_frames}")
    bounds = [*starts, len(fragments)]
    return [[list(fragments[j]) for j in range(bounds[i], bounds[i + 1])]
            for i in range(number_of_frames)]


def _starts_from_offsets(rel: list[int], offsets: list[int]) -> list[int] | None:
    where = {r: i for i, r in enumerate(rel)}
    starts = [where.get(o) for o in offsets]
    if any(s is None for s in starts):
        return None
    return [s for s in starts if s is not None]


def _opens_frame(value: bytes | memoryview, pos: int, length: int) -> bool:
    head = bytes(value[pos: pos + min(length, 12)])
    return head.startswith(_FRAME_STARTS)


def read_frame(path: Path, ranges: list[list[int]]) -> bytes:
    """The bytes of one frame (its fragments concatenated), read with seeks."""
    parts = []
    with path.open("rb") as f:
        for offset, length in ranges:
            f.seek(offset)
            chunk = f.read(length)
            if len(chunk) != length:
                raise OSError(f"{path.name} is shorter than its index says")
            parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)
