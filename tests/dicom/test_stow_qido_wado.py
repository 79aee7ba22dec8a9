"""STOW-RS, QIDO-RS and WADO-RS over HTTP, including access control and bad input."""

from __future__ import annotations

import io

import pydicom
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from PIL import Image

from tests.conftest import Api, with_settings
from tests.dicom.conftest import dget, failed, multipart_body, stored, stow
from yilian.server.app import create_app
from yilian.server.core.settings import Settings


async def test_store_search_retrieve(api: Api, ct_files: list[bytes]) -> None:
    township = await api.login("township")
    status, doc = await stow(township, ct_files)
    assert status == 200, doc
    assert len(stored(doc)) == 4 and not failed(doc)
    study = pydicom.dcmread(io.BytesIO(ct_files[0])).StudyInstanceUID
    # idempotent re-send
    status, doc = await stow(township, ct_files[:2], study)
    assert status == 200 and len(stored(doc)) == 2

    status, found = await dget(township, "/dicomweb/studies", params={"PatientID": "T-1"})
    assert status == 200
    assert [s["0020000D"]["Value"][0] for s in found] == [study]
    assert found[0]["00201208"]["Value"] == [4]
    for params, n in [({"PatientName": "test*"}, 1), ({"StudyDate": "20240301-20240310"}, 1),
                      ({"StudyDate": "-20240101"}, 0), ({"ModalitiesInStudy": "CT", "PatientID": "T-1"}, 1), ({"ModalitiesInStudy": "MR"}, 0),
                      ({"StudyInstanceUID": f"1.2.3,{study}"}, 1), ({"AccessionNumber": "A?C1"}, 1),
                      ({"PatientID": "T-1", "limit": "1", "offset": "1"}, 0)]:
        status, res = await dget(township, "/dicomweb/studies", params=params)
        assert status == 200 and len(res) == n, (params, res)
    status, series = await dget(township, f"/dicomweb/studies/{study}/series")
    assert status == 200 and len(series) == 1
    se = series[0]["0020000E"]["Value"][0]
    status, insts = await dget(township, f"/dicomweb/studies/{study}/series/{se}/instances",
                                       params={"includefield": "ImagePositionPatient"})
    assert status == 200 and len(insts) == 4
    assert "00200032" in insts[0]
    status, flat = await dget(township, "/dicomweb/instances", params={"PatientID": "T-1"})
    assert status == 200 and len(flat) == 4
    sop = insts[0]["00080018"]["Value"][0]
    base = f"/dicomweb/studies/{study}/series/{se}/instances/{sop}"
    status, meta = await dget(township, f"{base}/metadata")
    assert status == 200 and meta[0]["00080018"]["Value"] == [sop]
    assert "7FE00010" not in meta[0]
    status, png = await dget(township, f"{base}/rendered", headers={"Accept": "image/png"},
                                     params={"window": "40,400"})
    assert status == 200
    assert Image.open(io.BytesIO(png)).size == (128, 128)
    status, jpg = await dget(township, f"{base}/thumbnail")
    assert status == 200 and jpg[:2] == b"\xff\xd8"
    # PS3.18: the accept query parameter wins over the Accept header (as viewers send it)
    multipart = {"Accept": 'multipart/related; type="application/octet-stream"'}
    for path in (f"{base}/thumbnail", f"{base}/rendered", f"/dicomweb/studies/{study}/thumbnail"):
        status, img = await dget(township, path, params={"accept": "image/png"}, headers=multipart)
        assert status == 200 and img[:4] == b"\x89PNG", path
    status, body = await dget(township, f"{base}/thumbnail", params={"accept": "text/html"})
    assert status == 406

    # unrelated institution: 404 everywhere, and nothing in searches
    guilin = await api.login("guilin_doctor")
    for path in (f"/dicomweb/studies/{study}", f"{base}/metadata", f"{base}/frames/1",
                 f"{base}/rendered", f"/dicomweb/studies/{study}/series",
                 f"/dicomweb/studies/{study}/metadata", f"{base}/thumbnail",
                 f"/dicomweb/studies/{study}/series/{se}", f"/dicomweb/studies/{study}/instances",
                 f"/dicomweb/studies/{study}/series/{se}/instances",
                 f"/dicomweb/studies/{study}/series/{se}/metadata", f"{base}/frames/1/rendered",
                 f"/dicomweb/studies/{study}/thumbnail"):
        status, body = await dget(guilin, path)
        assert status == 404, (path, status)
        assert body["error"]["code"] == "study_not_found"
    status, res = await dget(guilin, "/dicomweb/studies", params={"PatientID": "T-1"})
    assert status == 200 and res == []
    status, doc = await stow(guilin, ct_files[:1])
    assert status == 409 and failed(doc)[0]["00081197"]["Value"] == [0x0124]
    coordinator = await api.login("coordinator")
    status, body = await dget(coordinator, f"{base}/metadata")
    assert status == 403


async def test_bad_uploads_get_clear_4xx(api: Api, ct_files: list[bytes]) -> None:
    township = await api.login("township")
    body, ctype = multipart_body(ct_files[:1])
    url = township.url("/dicomweb/studies")
    cases = [
        (body[:-40], ctype, 400, "invalid_multipart"),
        (body, "application/json", 415, "unsupported_media_type"),
        (body, 'multipart/related; type="application/dicom+json"; boundary=x', 415,
         "unsupported_media_type"),
        (b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n",
         'multipart/related; type="application/dicom"; boundary=b', 415,
         "unsupported_media_type"),
        (b"--b--\r\n", 'multipart/related; type="application/dicom"; boundary=b', 400,
         "invalid_multipart"),
    ]
    for data, ct, status, code in cases:
        async with township.http.post(url, data=data, headers=township.headers(
                {"Content-Type": ct})) as r:
            got = await r.json()
            assert r.status == status, (ct, got)
            assert got["error"]["code"] == code
    async with api.http.post(url, data=body, headers={"Content-Type": ctype}) as r:
        assert r.status == 401


async def test_oversized_upload_is_refused(settings: Settings, ct_files: list[bytes]) -> None:
    srv = TestServer(create_app(with_settings(settings, max_upload_bytes=10_000)),
                     host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        async with ClientSession() as http:
            township = await Api(srv, http).login("township")
            status, body = await stow(township, ct_files[:1])
            assert status == 413 and body["error"]["code"] == "payload_too_large"
            status, found = await dget(township, "/dicomweb/studies",
                                       params={"PatientID": "T-1"})
            assert found == []
    finally:
        await srv.close()


async def test_cors_for_browser_viewers(api: Api) -> None:
    async with api.http.options(api.url("/dicomweb/studies"), headers={
            "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"}) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    township = await api.login("township")
    async with township.http.get(township.url("/dicomweb/studies"),
                                 headers=township.headers({"Origin": "https://v.example"})) as r:
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    async with api.http.get(api.url("/dicomweb/studies")) as r:  # errors carry it too
        assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == "*"
