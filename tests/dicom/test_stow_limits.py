"""What one DICOMweb request may cost: boundaries outside RFC 2046, the parts of an upload,
parts that cannot be DICOM, uploads larger than the limit (declared or not), large parts
written piece by piece, frame lists (repeated, too long) and answers streamed part by part."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import ClientPayloadError, ClientSession
from aiohttp.test_utils import TestServer
from pydicom.uid import generate_uid

from tests.conftest import Api, with_settings
from tests.dicom.conftest import dget, failed, multipart_body, stored, stow
from yilian.dicom import keys as dicom_keys
from yilian.dicom.multipart import (
    MultipartReader,
    TooManyParts,
    build_multipart,
    parse_content_type,
    parse_multipart,
)
from yilian.dicom.synth import CT_IMAGE, _base, dr_image, to_bytes
from yilian.server.app import create_app
from yilian.server.core.settings import Settings

Serve = Callable[..., Any]


@pytest.fixture
async def serve(settings: Settings) -> AsyncIterator[Serve]:
    """Start the app with some settings changed; yields a function giving a logged-in client
    (township) of a new server."""
    servers: list[TestServer] = []
    async with ClientSession() as http:
        async def start(**changes: Any) -> Api:
            srv = TestServer(create_app(with_settings(settings, **changes)), host="127.0.0.1",
                             port=0)
            await srv.start_server()
            servers.append(srv)
            return await Api(srv, http).login("township")

        yield start
    for srv in servers:
        await srv.close()


def _staging_empty(api: Api) -> bool:
    return not list(api.server.app[dicom_keys.DICOM_STORAGE].staging.iterdir())


async def _raw(api: Api, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are (no client library in the way); the answer up to its close."""
    assert api.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", api.server.port)
    writer.write(head + b"Authorization: Bearer " + str(api.token).encode()
                 + b"\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\n\r\n" + body)
    answer = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return answer


@pytest.mark.parametrize("boundary", [
    "中文".encode(), b"\xe9t\xe9", b"a" * 71, b'"ends with a space "', b"semi;colon",
    b"curly{brace}", b"tab\tinside"])
async def test_a_boundary_outside_rfc_2046_is_400(api: Api, ct_files: list[bytes],
                                                  boundary: bytes) -> None:
    township = await api.login("township")
    answer = await _raw(
        township, b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\n"
        b'Content-Type: multipart/related; type="application/dicom"; boundary=' + boundary
        + b"\r\n", b"--" + boundary + b"\r\n\r\n" + ct_files[0] + b"\r\n--" + boundary + b"--")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"invalid_multipart" in answer
    assert _staging_empty(township)


async def test_parts_beyond_the_limit_are_413(serve: Serve, ct_files: list[bytes]) -> None:
    township = await serve(max_upload_parts=3)
    status, doc = await stow(township, ct_files)
    assert (status, doc["error"]["code"]) == (413, "too_many_parts")
    assert doc["error"]["details"] == {"limit": 3}
    assert _staging_empty(township)
    status, found = await dget(township, "/dicomweb/studies", params={"PatientID": "T-1"})
    assert found == []
    status, doc = await stow(township, ct_files[:3])
    assert status == 200 and len(stored(doc)) == 3


async def test_parts_that_cannot_be_dicom_are_refused_without_a_file(
        api: Api, ct_files: list[bytes]) -> None:
    township = await api.login("township")
    status, doc = await stow(township, [b"", ct_files[0], b"x" * 131, b"y" * 4000])
    assert status == 202
    assert len(stored(doc)) == 1
    refused = failed(doc)
    assert len(refused) == 3
    assert all(r["00081197"]["Value"] == [0xC000] for r in refused)
    assert all("DICM" in r["00000902"]["Value"][0] for r in refused)
    assert _staging_empty(township)


async def test_uploads_over_the_limit_declared_or_not(serve: Serve,
                                                      ct_files: list[bytes]) -> None:
    township = await serve(max_upload_bytes=100_000)
    body, ctype = multipart_body(ct_files)  # four 32 KB slices
    assert len(body) > 100_000
    headers = township.headers({"Content-Type": ctype})
    async with township.http.post(township.url("/dicomweb/studies"), data=body,
                                  headers=headers) as r:
        assert r.status == 413

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    async with township.http.post(township.url("/dicomweb/studies"), data=chunked(),
                                  headers=headers) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "payload_too_large"
    assert _staging_empty(township)


async def test_a_large_part_arrives_in_pieces_and_is_sent_back_whole(
        api: Api) -> None:
    township = await api.login("township")
    image = dr_image(1024, patient={"id": "PIECES"})  # a 2 MB part: written in pieces
    body, ctype = multipart_body([image, image[:500]])

    async def slowly() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 100_003):
            yield body[i:i + 100_003]
            await asyncio.sleep(0)

    async with township.http.post(township.url("/dicomweb/studies"), data=slowly(),
                                  headers=township.headers({"Content-Type": ctype})) as r:
        doc = await r.json(content_type=None)
    assert r.status == 202 and len(stored(doc)) == 1, doc
    assert _staging_empty(township)
    url = stored(doc)[0]["00081190"]["Value"][0]
    async with township.http.get(url, headers=township.headers()) as r:
        assert r.status == 200
        assert "Content-Length" not in r.headers  # streamed
        parts = parse_multipart(await r.read(),
                                parse_content_type(r.headers["Content-Type"])[1]["boundary"])
    assert [p.body for p in parts] == [image]


def _multiframe(frames: int, side: int) -> tuple[bytes, list[bytes]]:
    ds = _base(CT_IMAGE, generate_uid(), generate_uid(), {"id": "FRAMES"}, "CT")
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.NumberOfFrames = frames
    pixels = np.random.default_rng(1).integers(0, 4096, (frames, side, side), dtype="<u2")
    ds.PixelData = pixels.tobytes()
    return to_bytes(ds), [f.tobytes() for f in pixels]


async def _frames(api: Api, url: str, numbers: str) -> tuple[int, Any, Any]:
    async with api.http.get(f"{url}/frames/{numbers}", headers=api.headers({
            "Accept": 'multipart/related; type="application/octet-stream"'})) as r:
        if r.status != 200:
            return r.status, await r.json(), r.headers
        boundary = parse_content_type(r.headers["Content-Type"])[1]["boundary"]
        return r.status, parse_multipart(await r.read(), boundary), r.headers


async def test_frame_lists(serve: Serve) -> None:
    township = await serve(max_frames_per_request=6)
    data, pixels = _multiframe(6, 512)  # frames of 512 KB: more than two stream
    status, doc = await stow(township, [data])
    assert status == 200, doc
    url = stored(doc)[0]["00081190"]["Value"][0]

    status, parts, headers = await _frames(township, url, "2,1")  # one read: with its length
    assert status == 200 and "Content-Length" in headers
    assert [p.body for p in parts] == [pixels[1], pixels[0]]
    assert parts[0].headers["content-location"].endswith("/frames/2")

    status, parts, headers = await _frames(township, url, "6,1,5,2,4,3")  # streamed
    assert status == 200 and "Content-Length" not in headers
    assert [p.body for p in parts] == [pixels[n - 1] for n in (6, 1, 5, 2, 4, 3)]
    assert [p.headers["content-location"].rsplit("/", 1)[1] for p in parts] == \
        ["6", "1", "5", "2", "4", "3"]

    for numbers, code in (("1,2,1", "invalid_frame_list"), (",".join(["3"] * 7),
                          "too_many_frames"), ("1,2,3,4,5,6,7", "too_many_frames")):
        status, error, _ = await _frames(township, url, numbers)
        assert (status, error["error"]["code"]) == (400, code), error
    status, error, _ = await _frames(township, url, "7")
    assert (status, error["error"]["code"]) == (404, "frame_not_found")
    async with township.http.get(f"{url}/frames/1,1/rendered",
                                 headers=township.headers()) as r:
        assert r.status == 400


async def test_a_failure_mid_stream_truncates_the_answer(api: Api) -> None:
    """A file gone after the answer has started: the client sees a broken answer (no closing
    delimiter, no last chunk), not a short one that looks complete."""
    township = await api.login("township")
    study, series = generate_uid(), generate_uid()
    files = []
    for n in range(2):
        ds = _base(CT_IMAGE, study, series, {"id": "GONE"}, "CT")
        ds.InstanceNumber = n + 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = 32
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = bytes(32 * 32 * 2)
        files.append(to_bytes(ds))
    status, doc = await stow(township, files)
    assert status == 200
    storage = township.server.app[dicom_keys.DICOM_STORAGE]
    second = stored(doc)[1]["00081155"]["Value"][0]
    storage.path_of(f"{study}/{series}/{second}.dcm").unlink()
    async with township.http.get(township.url(f"/dicomweb/studies/{study}"),
                                 headers=township.headers()) as r:
        assert r.status == 200
        with pytest.raises(ClientPayloadError):
            await r.read()


def test_the_reader_refuses_parts_beyond_its_limit_at_once() -> None:
    body = build_multipart([(b"", {})] * 100_000, "b")
    reader = MultipartReader("b", max_parts=10_000)
    with pytest.raises(TooManyParts):
        reader.feed(body)
    assert reader.parts == 10_001
    unlimited = MultipartReader("b")
    events = unlimited.feed(body) + unlimited.finish()
    assert unlimited.parts == 100_000 and len(events) == 200_000 and unlimited.done
