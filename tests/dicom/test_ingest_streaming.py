"""Ingest while the upload arrives: the incremental multipart reader against the whole-body
parser, bounded memory, parsing from a view of the upload, and no staged file left behind by
a failed STOW."""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.data import get_testdata_files

from tests.conftest import Api
from tests.dicom.conftest import dget, multipart_body
from yilian.dicom import keys as dicom_keys
from yilian.dicom.multipart import (
    MultipartError,
    MultipartReader,
    PartData,
    PartStart,
    build_multipart,
    parse_multipart,
)
from yilian.dicom.parse import InstanceRejected, prepare_instance


def _streamed(body: bytes, boundary: str, sizes: list[int]) -> list[tuple[dict[str, str], bytes]]:
    reader = MultipartReader(boundary)
    events, pos, i = [], 0, 0
    while pos < len(body):
        n = sizes[i % len(sizes)]
        events += reader.feed(body[pos:pos + n])
        pos, i = pos + n, i + 1
    events += reader.finish()
    parts: list[tuple[dict[str, str], bytes]] = []
    for event in events:
        if isinstance(event, PartStart):
            parts.append((event.headers, b""))
        elif isinstance(event, PartData):
            parts[-1] = (parts[-1][0], parts[-1][1] + bytes(event.data))
    return parts


def _whole(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    return [(p.headers, bytes(p.body)) for p in parse_multipart(body, boundary)]


def _outcome(fn: Callable[..., object], *args: object) -> object:
    try:
        return fn(*args)
    except MultipartError as exc:
        return f"error: {exc}"


def _bodies() -> list[tuple[bytes, str]]:
    files = [os.urandom(n) for n in (0, 1, 700, 5000)] + [b"\r\n--not-it\r\n" * 30]
    good = build_multipart([(f, {"Content-Type": "application/dicom"}) for f in files], "bb")
    return [
        (good, "bb"),
        (b"preamble\r\n" + good + b"epilogue", "bb"),
        (b"--bb\r\n\r\nno headers\r\n--bb--", "bb"),
        (b"--bb\r\nX-A: 1\r\nX-B: 2\r\n\r\n\r\n--bb \r\n\r\nx\r\n--bb--\r\n", "bb"),
        (b"--bb\r\nbad header\r\n\r\nx\r\n--bb--\r\n", "bb"),
        (b"--bb\r\n\r\nx\r\n--bbX\r\n\r\ny\r\n--bb--", "bb"),
        (b"no boundary at all", "bb"),
    ]


def test_streamed_parts_match_the_whole_body_parse() -> None:
    rnd = random.Random(3)
    checked = 0
    for body, boundary in _bodies():
        cuts = sorted({0, len(body), *(rnd.randrange(len(body) + 1) for _ in range(25))})
        for end in cuts:  # every truncation gives the same parts or the same error
            data = body[:end]
            whole = _outcome(_whole, data, boundary)
            for sizes in ([1], [7], [4096], [rnd.randrange(1, 300) for _ in range(9)]):
                got = _outcome(_streamed, data, boundary, sizes)
                assert got == whole, (body[:40], end, sizes)
                checked += 1
    assert checked > 300


def test_the_reader_keeps_only_what_may_be_a_delimiter() -> None:
    boundary = "b" * 70
    reader = MultipartReader(boundary)
    reader.feed(f"--{boundary}\r\n\r\n".encode())
    for _ in range(100):  # 100 MB of one part's data, fed a megabyte at a time
        events = reader.feed(b"x" * (1 << 20))
        assert all(isinstance(e, PartData) for e in events)
        assert reader.held < len(boundary) + 4


def test_a_view_of_the_upload_prepares_like_the_bytes() -> None:
    compared = 0
    for name in sorted(get_testdata_files()):
        if not os.path.isfile(name):
            continue
        data = Path(name).read_bytes()
        framed = b"\x00" * 11 + data + b"\r\n--x"  # the file in the middle of an upload
        view = memoryview(framed)[11:11 + len(data)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                a = prepare_instance(data)
            except InstanceRejected as exc:
                with pytest.raises(InstanceRejected) as info:
                    prepare_instance(view)
                assert (info.value.reason, info.value.message) == (exc.reason, exc.message)
                continue
            b = prepare_instance(view)
        assert bytes(b.data) == data
        a.data = b.data = b""
        assert a == b, name
        compared += 1
    assert compared > 30


async def test_a_failed_upload_leaves_no_staged_file(api: Api, ct_files: list[bytes]) -> None:
    township = await api.login("township")
    url = township.url("/dicomweb/studies")
    good, ctype = multipart_body(ct_files)
    boundary = ctype.rsplit("=", 1)[1]
    bad_part = build_multipart(
        [(f, {"Content-Type": "application/dicom"}) for f in ct_files[:3]]
        + [(b"hello", {"Content-Type": "text/plain"})], boundary)
    for data, status in ((good[:-60], 400), (bad_part, 415)):
        async with township.http.post(url, data=data, headers=township.headers(
                {"Content-Type": ctype})) as r:
            assert r.status == status, await r.text()
    staging = api.server.app[dicom_keys.DICOM_STORAGE].staging
    assert list(staging.iterdir()) == []
    status, found = await dget(township, "/dicomweb/studies", params={"PatientID": "T-1"})
    assert found == []
    async with township.http.post(url, data=good, headers=township.headers(
            {"Content-Type": ctype})) as r:
        assert r.status == 200
    assert list(staging.iterdir()) == []
