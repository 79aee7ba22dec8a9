"""Our whole-slide images conform to the VL Whole Slide Microscopy Image IOD: checked by
dicom3tools' dciodvfy (when installed) and opened by an independent reader (wsidicom), from
files and through our DICOMweb; the ICC profile reaches /metadata (dicomweb-client)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from aiohttp.test_utils import TestServer
from dicomweb_client.api import DICOMwebClient

from tests.conftest import Api
from tests.dicom.conftest import stored, stow
from yilian.dicom.demo import slide_image
from yilian.dicom.wsi import build_pyramid, srgb_profile


@pytest.fixture(scope="module")
def pyramid() -> list[bytes]:
    return build_pyramid(slide_image(700, 500), tile=256, patient_name="Chen^Guilan",
                         patient_id="SL-9")


def _write(levels: list[bytes], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, data in enumerate(levels):
        (folder / f"level-{n}.dcm").write_bytes(data)
        paths.append(folder / f"level-{n}.dcm")
    return paths


def test_levels_carry_the_wsi_attributes(pyramid: list[bytes]) -> None:
    import io

    levels = [pydicom.dcmread(io.BytesIO(d)) for d in pyramid]
    assert len(levels) == 3  # 700x500, 350x250, 175x125
    for ds in levels:
        assert [int(v) for v in ds.ImageOrientationSlide] == [0, -1, 0, -1, 0, 0]
        origin = ds.TotalPixelMatrixOriginSequence[0]
        assert (origin.XOffsetInSlideCoordinateSystem, origin.YOffsetInSlideCoordinateSystem
                ) == (0, 0)
        assert ds.DimensionOrganizationType == "TILED_FULL"
        assert [i.DimensionIndexPointer for i in ds.DimensionIndexSequence] == [
            0x0048021E, 0x0048021F]
        path = ds.OpticalPathSequence[0]
        assert path.OpticalPathIdentifier == "1" and path.ColorSpace == "SRGB"
        assert path.ICCProfile == srgb_profile() and path.ICCProfile[36:40] == b"acsp"
        assert path.IlluminationTypeCodeSequence[0].CodeValue == "111744"
        assert ds.SpecimenDescriptionSequence[0].SpecimenUID
        assert float(ds.LossyImageCompressionRatio) > 1
    # one pyramid: one frame of reference, container, dimension organization and specimen
    for keyword in ("FrameOfReferenceUID", "ContainerIdentifier", "SeriesInstanceUID"):
        assert len({str(ds.get(keyword)) for ds in levels}) == 1, keyword
    assert len({ds.DimensionOrganizationSequence[0].DimensionOrganizationUID
                for ds in levels}) == 1
    assert srgb_profile() == srgb_profile() and srgb_profile()[:4] == len(srgb_profile()).to_bytes(4, "big")


def test_every_level_covers_the_same_area(tmp_path: Path) -> None:
    """Levels halved from odd sizes (301 -> 151 -> 76) keep the imaged area: their pixel
    spacing is the area over their size (what OHIF's viewer checks), not twice the last."""
    import io

    levels = [pydicom.dcmread(io.BytesIO(d)) for d in
              build_pyramid(slide_image(301, 190), tile=64, spacing_mm=0.0005)]
    assert [ds.TotalPixelMatrixColumns for ds in levels] == [301, 151, 76, 38]
    for ds in levels:
        rows, columns = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0] \
            .PixelSpacing
        assert round(ds.TotalPixelMatrixColumns * columns, 4) == round(301 * 0.0005, 4)
        assert round(ds.TotalPixelMatrixRows * rows, 4) == round(190 * 0.0005, 4)
        assert (float(ds.ImagedVolumeWidth), float(ds.ImagedVolumeHeight)) == pytest.approx(
            (301 * 0.0005, 190 * 0.0005))
    if shutil.which("dciodvfy"):  # spacings such as 0.15/151 fit a DS (16 characters)
        for n, data in enumerate(build_pyramid(slide_image(301, 190), tile=64,
                                               spacing_mm=0.0005)):
            path = tmp_path / f"odd-{n}.dcm"
            path.write_bytes(data)
            assert dciodvfy_errors(path) == [], n


def dciodvfy_errors(path: Path) -> list[str]:
    proc = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True,
                          timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines()
            if line.startswith("Error")]


@pytest.mark.skipif(shutil.which("dciodvfy") is None and os.environ.get("CI") != "true",
                    reason="dicom3tools' dciodvfy is not installed (apt-get install dicom3tools);"
                           " on CI it always runs")
def test_dciodvfy_finds_no_error(pyramid: list[bytes], tmp_path: Path) -> None:
    for path in _write(pyramid, tmp_path):
        assert dciodvfy_errors(path) == [], path.name
    chinese = build_pyramid(slide_image(300, 200), patient_name="王^秀英",
                            description="肺穿刺活检, H&E")
    path = _write(chinese[:1], tmp_path / "zh")[0]
    assert pydicom.dcmread(path).SpecificCharacterSet == "ISO_IR 192"
    assert dciodvfy_errors(path) == []


def test_wsidicom_opens_the_files(pyramid: list[bytes], tmp_path: Path) -> None:
    from wsidicom import WsiDicom

    _write(pyramid, tmp_path)
    with WsiDicom.open(tmp_path) as slide:
        assert len(slide.levels) == 3
        assert (slide.size.width, slide.size.height) == (700, 500)
        region = np.asarray(slide.read_region((300, 200), 0, (64, 64)))
        # the tissue section (pink stroma, purple nuclei) lies in the middle
        assert region.shape[:2] == (64, 64) and region[..., 0].mean() < 240


async def test_icc_profile_reaches_metadata_and_wsidicom_reads_our_dicomweb(
        api: Api, server: TestServer, pyramid: list[bytes]) -> None:
    import io

    township = await api.login("township")
    status, doc = await stow(township, pyramid)
    assert status == 200 and len(stored(doc)) == len(pyramid), doc
    base = pydicom.dcmread(io.BytesIO(pyramid[0]))
    study, series = base.StudyInstanceUID, base.SeriesInstanceUID
    client = DICOMwebClient(url=str(server.make_url("/dicomweb")),
                            headers={"Authorization": f"Bearer {township.token}"})

    def check() -> None:
        metadata = client.retrieve_series_metadata(study, series)
        assert len(metadata) == len(pyramid)
        for doc in metadata:
            ds = pydicom.Dataset.from_json(doc)
            assert [int(v) for v in ds.ImageOrientationSlide] == [0, -1, 0, -1, 0, 0]
            icc = doc["00480105"]["Value"][0]["00282000"]
            assert icc["vr"] == "OB" and base64.b64decode(icc["InlineBinary"]) == srgb_profile()
            assert ds.OpticalPathSequence[0].ICCProfile == srgb_profile()
        from wsidicom import WsiDicom, WsiDicomWebClient

        with WsiDicom.open_web(WsiDicomWebClient(client), study, series) as slide:
            assert (slide.size.width, slide.size.height) == (700, 500)
            region = np.asarray(slide.read_region((300, 200), 0, (64, 64)))
            assert region.shape[:2] == (64, 64) and region[..., 0].mean() < 240

    await asyncio.to_thread(check)


@pytest.mark.parametrize("size", [3000, 20000])
def test_larger_icc_profiles_are_inline_in_metadata(pyramid: list[bytes], size: int) -> None:
    """A scanner's profile over pydicom's 768-byte inline limit (and over the 8 KB a parse
    defers) is still in the stored JSON, as InlineBinary; other bulk data is not."""
    import io

    from yilian.dicom.parse import prepare_instance
    from yilian.dicom.synth import to_bytes

    ds = pydicom.dcmread(io.BytesIO(pyramid[-1]))
    profile = bytes(range(256)) * (size // 256) + b"\x01" * (size % 256)
    ds.OpticalPathSequence[0].ICCProfile = profile
    ds.ICCProfile = profile  # top level too (VL photographic images keep it there)
    ds.OpticalPathSequence[0].add_new(0x00221010, "OB", b"\x02" * 5000)  # not a profile
    doc = __import__("json").loads(prepare_instance(to_bytes(ds)).metadata_json)
    assert base64.b64decode(doc["00282000"]["InlineBinary"]) == profile
    path = doc["00480105"]["Value"][0]
    assert base64.b64decode(path["00282000"]["InlineBinary"]) == profile
    assert "00221010" not in path and "7FE00010" not in doc
