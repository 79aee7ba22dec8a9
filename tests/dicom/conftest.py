"""DICOM fixtures: STOW helpers, a server with the SCP on a free port, small corpora."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import Api, with_settings
from yilian.dicom import keys as dicom_keys
from yilian.dicom.multipart import build_multipart, new_boundary
from yilian.dicom.synth import ct_series
from yilian.server.app import create_app
from yilian.server.core.settings import Settings


def multipart_body(files: list[bytes], part_type: str = "application/dicom"
                   ) -> tuple[bytes, str]:
    """A STOW-RS body and its Content-Type."""
    boundary = new_boundary()
    body = build_multipart([(f, {"Content-Type": part_type}) for f in files], boundary)
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


async def stow(api: Api, files: list[bytes], study: str | None = None) -> tuple[int, Any]:
    """POST files to STOW-RS; returns (status, DICOM JSON or error JSON)."""
    body, ctype = multipart_body(files)
    path = f"/dicomweb/studies/{study}" if study else "/dicomweb/studies"
    async with api.http.post(api.url(path), data=body,
                             headers=api.headers({"Content-Type": ctype,
                                                  "Accept": "application/dicom+json"})) as r:
        return r.status, await r.json(content_type=None)


def failed(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc.get("00081198", {}).get("Value", [])


def stored(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return doc.get("00081199", {}).get("Value", [])


@pytest.fixture(scope="session")
def ct_files() -> list[bytes]:
    """A small CT series (4 slices of 128x128)."""
    return ct_series(4, 128, patient={"name": "Test^Patient", "id": "T-1",
                                      "study_date": "20240305", "accession": "ACC1"})


@pytest.fixture
async def scp_server(settings: Settings) -> AsyncIterator[TestServer]:
    """The real application with its C-STORE SCP on a free port."""
    before = {t.ident for t in threading.enumerate()}
    srv = TestServer(create_app(with_settings(settings, dicom_port=0)), host="127.0.0.1",
                     port=0)
    await srv.start_server()
    assert srv.app[dicom_keys.DICOM_PORT]
    yield srv
    await srv.close()
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()
              and ("pynetdicom" in type(t).__module__ or t.name.startswith("Acceptor"))]
    assert not leaked, leaked


async def dget(api: Api, path: str, params: dict[str, str] | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """GET a DICOMweb resource; JSON bodies (DICOM JSON or errors) parsed, others as bytes."""
    async with api.http.get(api.url(path), params=params, headers=api.headers(headers)) as r:
        if "json" in r.content_type:
            return r.status, await r.json(content_type=None)
        return r.status, await r.read()
