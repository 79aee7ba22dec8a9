"""PS3.18 8.3.3.1: the ``accept`` query parameter is honoured, over the Accept header, on
/rendered and /thumbnail (where viewers use it) and the other WADO-RS resources: encoded,
quoted, with parameters, repeated; an unsupported one answers 406."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from tests.conftest import Api
from tests.dicom.conftest import stored, stow

MAGIC = {"image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8", "image/gif": b"GIF8"}


async def _raw_get(api: Api, path_and_query: str, accept: str | None = None
                   ) -> tuple[int, str, bytes | Any]:
    """GET a URL sent exactly as written (its query already encoded, or deliberately not)."""
    url = URL(api.url(path_and_query), encoded=True)
    headers = api.headers({"Accept": accept} if accept else None)
    async with api.http.get(url, headers=headers) as r:
        body = await r.json(content_type=None) if "json" in r.content_type else await r.read()
        return r.status, r.content_type, body


@pytest.fixture
async def ct(api: Api, server: TestServer, ct_files: list[bytes]) -> tuple[Api, str]:
    township = await api.login("township")
    status, doc = await stow(township, ct_files)
    assert status == 200 and len(stored(doc)) == len(ct_files)
    # the instance's path below /dicomweb, from its RetrieveURL
    return township, stored(doc)[0]["00081190"]["Value"][0].split("/dicomweb", 1)[1]


CASES = [
    ("accept=image/png", None, "image/png"),
    ("accept=image/png", "image/jpeg", "image/png"),  # the parameter wins over the header
    ("accept=image%2Fpng", None, "image/png"),  # URL-encoded
    ("accept=%22image%2Fpng%22", None, "image/png"),  # quoted whole
    ("accept=image/jpeg;q=0.5,image/gif", None, "image/gif"),  # q-values
    ("accept=image/jpeg%3Bq%3D0.5%2C%20image/png", None, "image/png"),  # all encoded
    ("accept=application/dicom&accept=image/png", None, "image/png"),  # repeated
    ("accept=image/*", "image/png", "image/jpeg"),
    ("", "image/png", "image/png"),  # no parameter: the header
]
UNSUPPORTED = ["accept=application/dicom", "accept=%22text%2Fhtml%22", "accept=video/mp4"]
RESOURCES = ["rendered", "thumbnail", "frames/1/rendered", "frames/1/thumbnail"]


async def test_accept_parameter(ct: tuple[Api, str]) -> None:
    api, instance = ct
    for resource in RESOURCES:
        for query, header, media in CASES:
            status, ctype, body = await _raw_get(api, f"/dicomweb{instance}/{resource}?{query}",
                                                 header)
            assert status == 200, (resource, query, body)
            assert ctype == media and body.startswith(MAGIC[media]), (resource, query)
        for query in UNSUPPORTED:
            # an acceptable header does not rescue an unacceptable parameter
            status, _, body = await _raw_get(api, f"/dicomweb{instance}/{resource}?{query}",
                                             "image/jpeg")
            assert status == 406 and body["error"]["code"] == "not_acceptable", (resource,
                                                                                   query)


async def test_study_and_series_thumbnails(ct: tuple[Api, str]) -> None:
    api, instance = ct
    series = instance.split("/instances/")[0]
    study = series.split("/series/")[0]
    for path in (study, series):
        status, ctype, body = await _raw_get(api, f"/dicomweb{path}/thumbnail?accept=image/png")
        assert status == 200 and ctype == "image/png" and body.startswith(MAGIC["image/png"])
        status, _, _ = await _raw_get(api, f"/dicomweb{path}/thumbnail?accept=text/plain")
        assert status == 406


async def test_other_resources_honour_it(ct: tuple[Api, str]) -> None:
    api, instance = ct
    # an unencoded "+" arrives as a space; it is read as the "+json" it was
    status, ctype, body = await _raw_get(api, f"/dicomweb{instance}/metadata"
                                         "?accept=application/dicom+json", "text/html")
    assert status == 200 and isinstance(body, list) and ctype == "application/dicom+json"
    status, _, _ = await _raw_get(api, f"/dicomweb{instance}/metadata?accept=image/png")
    assert status == 406
    status, ctype, _ = await _raw_get(
        api, f"/dicomweb{instance}/frames/1?accept=multipart/related;%20type=%22application"
        "/octet-stream%22", "image/png")
    assert status == 200 and ctype == "multipart/related"
    status, _, _ = await _raw_get(api, f"/dicomweb{instance}/frames/1?accept=image/png")
    assert status == 406
