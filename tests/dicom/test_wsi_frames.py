"""Whole-slide pyramids from the `yilian wsi` command, served tile by tile through /frames;
frames and instances transcoded for clients that ask for explicit VR little endian."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
from aiohttp.test_utils import TestServer
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.data import get_testdata_file

from tests.conftest import Api
from tests.dicom.conftest import dget, stored, stow
from yilian.dicom import keys as dicom_keys
from yilian.dicom.demo import slide_image

YILIAN = "import sys; from yilian.server.cli import main; sys.exit(main(sys.argv[1:]))"


def _client(server: TestServer, token: str) -> DICOMwebClient:
    return DICOMwebClient(url=str(server.make_url("/dicomweb")),
                          headers={"Authorization": f"Bearer {token}"})


async def test_wsi_command_and_tiles(api: Api, server: TestServer, tmp_path: Path) -> None:
    src = tmp_path / "slide.png"
    slide_image(1200, 700).save(src)
    out = tmp_path / "pyramid"
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", YILIAN, "wsi", str(src), str(out),
                         "--tile", "256", "--patient-id", "PATH-7"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    levels = sorted(out.glob("level-*.dcm"))
    assert len(levels) == 4  # 1200x700, 600x350, 300x175, 150x88
    base = pydicom.dcmread(levels[0])
    assert base.DimensionOrganizationType == "TILED_FULL"
    assert base.NumberOfFrames == 5 * 3 and base.TotalPixelMatrixColumns == 1200
    # what a microscopy viewer needs to place the tiles (the WSI module requires it)
    assert [int(v) for v in base.ImageOrientationSlide] == [0, -1, 0, -1, 0, 0]

    township = await api.login("township")
    status, doc = await stow(township, [p.read_bytes() for p in levels])
    assert status == 200 and len(stored(doc)) == 4
    study, series, sop = (base.StudyInstanceUID, base.SeriesInstanceUID, base.SOPInstanceUID)
    client = _client(server, township.token or "")
    reader = server.app[dicom_keys.DICOM_READER]

    def tiles() -> None:
        frames = client.retrieve_instance_frames(study, series, sop, frame_numbers=[1, 7, 15],
                                                 media_types=("image/jpeg",))
        assert len(frames) == 3
        for f in frames:
            assert Image.open(io.BytesIO(f)).size == (256, 256)
        hits = reader.frames.hits
        again = client.retrieve_instance_frames(study, series, sop, frame_numbers=[7],
                                                media_types=("image/jpeg",))
        assert again[0] == frames[1] and reader.frames.hits == hits + 1
        raw = client.retrieve_instance_frames(
            study, series, sop, frame_numbers=[2],
            media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),))
        assert len(raw[0]) == 256 * 256 * 3
        rendered = client.retrieve_instance_frames_rendered(study, series, sop,
                                                            frame_numbers=[15])
        assert Image.open(io.BytesIO(rendered)).size == (256, 256)

    await asyncio.to_thread(tiles)
    status, body = await dget(township, f"/dicomweb/studies/{study}/series/{series}/instances/"
                              f"{sop}/frames/16")
    assert status == 404 and body["error"]["code"] == "frame_not_found"
    status, body = await dget(township, f"/dicomweb/studies/{study}/series/{series}/instances/"
                              f"{sop}/frames/1,x")
    assert status == 400 and body["error"]["code"] == "invalid_frame_list"
    for frames in ("%D9%A1", "%EF%BC%91", "%201", "+1", "1,,2"):  # ١, full-width 1, " 1"
        status, body = await dget(township, f"/dicomweb/studies/{study}/series/{series}/"
                                  f"instances/{sop}/frames/{frames}")
        assert status == 400 and body["error"]["code"] == "invalid_frame_list", frames


async def test_transcoding_compressed_to_explicit_le(api: Api, server: TestServer) -> None:
    path = get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")
    assert path is not None
    original = pydicom.dcmread(path)
    data = await asyncio.to_thread(Path(path).read_bytes)
    township = await api.login("township")
    status, _ = await stow(township, [data])
    assert status == 200
    client = _client(server, township.token or "")
    args = (original.StudyInstanceUID, original.SeriesInstanceUID, original.SOPInstanceUID)

    def fetch() -> None:
        plain = client.retrieve_instance(*args, media_types=(
            ("application/dicom", "1.2.840.10008.1.2.1"),))
        assert plain.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert np.array_equal(plain.pixel_array, original.pixel_array)
        as_stored = client.retrieve_instance(*args, media_types=(("application/dicom", "*"),))
        assert as_stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        (frame,) = client.retrieve_instance_frames(*args, frame_numbers=[1], media_types=(
            ("application/octet-stream", "1.2.840.10008.1.2.1"),))
        assert frame == original.pixel_array.astype(np.uint8).tobytes()

    await asyncio.to_thread(fetch)
    url = "/dicomweb/studies/{}/series/{}/instances/{}".format(*args)
    status, body = await dget(township, url, headers={
        "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.90'})
    assert status == 406 and body["error"]["code"] == "not_acceptable"
    status, body = await dget(township, f"{url}/rendered", params={"viewport": "0,0"})
    assert status == 400
