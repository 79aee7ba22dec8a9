"""Turning an ordinary large image into a DICOM VL Whole Slide Microscopy pyramid:
one TILED_FULL instance per level, JPEG baseline tiles, halving until one tile is left."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from functools import cache
from pathlib import Path

from PIL import Image, ImageCms
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit, generate_uid
from pydicom.valuerep import DSfloat

from yilian.dicom.synth import new_instance, to_bytes

logger = logging.getLogger(__name__)
VL_WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
#: The Manufacturer our converter writes (the repair brings only its slides up to date).
MANUFACTURER = "Yilian"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def _tiles(image: Image.Image, tile: int, quality: int) -> list[bytes]:
    """Row-major JPEG tiles; edge tiles padded with white (a slide's background)."""
    out = []
    for top in range(0, image.height, tile):
        for left in range(0, image.width, tile):
            box = image.crop((left, top, min(left + tile, image.width),
                              min(top + tile, image.height)))
            if box.size != (tile, tile):
                canvas = Image.new("RGB", (tile, tile), "white")
                canvas.paste(box, (0, 0))
                box = canvas
            buf = io.BytesIO()
            box.save(buf, "JPEG", quality=quality, subsampling=1)  # 4:2:2 = YBR_FULL_422
            out.append(buf.getvalue())
    return out


def _level(image: Image.Image, level: int, tile: int, quality: int,
           size_mm: tuple[float, float],
           common: dict[str, str], frame_of_reference: str) -> Dataset:
    tiles = _tiles(image, tile, quality)
    ds = new_instance(VL_WSI, JPEGBaseline8Bit, common["study_uid"], common["series_uid"])
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PatientName, ds.PatientID = common["patient_name"], common["patient_id"]
    if not (common["patient_name"] + common.get("description", "")).isascii():
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: Chinese names
    ds.PatientBirthDate, ds.PatientSex = common.get("birth_date", ""), common.get("sex", "")
    now = datetime.now()
    ds.StudyDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = common.get("accession", ""), \
        "1", ""
    ds.StudyDescription = common.get("description", "Pathology slide")
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SM", 1, level + 1
    ds.SeriesDescription = "Whole slide image"
    ds.Manufacturer = MANUFACTURER
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"] if level == 0 else \
        ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"]
    ds.Rows = ds.Columns = tile
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = image.width, image.height
    ds.NumberOfFrames = len(tiles)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = \
        3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    # Every level images the same area: a level halved from an odd size has slightly larger
    # pixels than twice the level above (viewers check the levels' extents agree).
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight = size_mm
    measures = Dataset()
    measures.PixelSpacing = [DSfloat(size_mm[1] / image.height, auto_format=True),  # row,
                             DSfloat(size_mm[0] / image.width, auto_format=True)]  # column
    measures.SliceThickness = 0.001
    frame_type = Dataset()
    frame_type.FrameType = ds.ImageType
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.ContainerIdentifier = common.get("container", "SLIDE-1")
    specimen = Dataset()
    specimen.SpecimenIdentifier = common.get("container", "SLIDE-1")
    specimen.SpecimenUID = common["specimen_uid"]
    ds.SpecimenDescriptionSequence = Sequence([specimen])
    conform(ds, compressed_bytes=sum(len(t) for t in tiles))
    ds.PixelData = encapsulate(tiles, has_bot=True)
    ds["PixelData"].VR = "OB"
    return ds


@cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (LittleCMS's, through Pillow), the same bytes every time: its
    creation date is fixed, so a repaired or rebuilt slide carries one profile."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    # ICC.1 7.2.1: bytes 24-35, the creation dateTimeNumber (six big-endian uint16)
    data[24:36] = b"".join(v.to_bytes(2, "big") for v in (2024, 1, 1, 0, 0, 0))
    data[84:100] = bytes(16)  # profile ID: zero = not computed (the date changed)
    return bytes(data)


def _derived_uid(ds: Dataset, what: str) -> str:
    """A UID derived from the series (the same for every level, and on every repair)."""
    return generate_uid(entropy_srcs=[str(ds.SeriesInstanceUID), what])


def _dimensions(ds: Dataset) -> None:
    uid = _derived_uid(ds, "dimension-organization")
    org = Dataset()
    org.DimensionOrganizationUID = uid
    ds.DimensionOrganizationSequence = Sequence([org])
    index = []
    for keyword, label in (("ColumnPositionInTotalImagePixelMatrix", "Column position"),
                           ("RowPositionInTotalImagePixelMatrix", "Row position")):
        item = Dataset()
        item.DimensionOrganizationUID = uid
        item.DimensionIndexPointer = keyword
        item.FunctionalGroupPointer = "PlanePositionSlideSequence"
        item.DimensionDescriptionLabel = label
        index.append(item)
    ds.DimensionIndexSequence = Sequence(index)


def _optical_path(ds: Dataset) -> list[str]:
    added: list[str] = []
    if not ds.get("OpticalPathSequence"):
        ds.OpticalPathSequence = Sequence([Dataset()])
        added.append("OpticalPathSequence")
    path = ds.OpticalPathSequence[0]
    values: list[tuple[str, object]] = [
        ("OpticalPathIdentifier", "1"),
        ("OpticalPathDescription", "Brightfield"),
        ("IlluminationTypeCodeSequence",
         Sequence([_code("111744", "DCM", "Brightfield illumination")])),
        ("IlluminationColorCodeSequence", Sequence([_code("414298005", "SCT",
                                                          "Full Spectrum")])),
        ("ICCProfile", srgb_profile()),
        ("ColorSpace", "SRGB"),
    ]
    for keyword, value in values:
        if keyword not in path:
            setattr(path, keyword, value)
            added.append(f"OpticalPathSequence.{keyword}")
    return added


def _specimen(ds: Dataset) -> list[str]:
    added: list[str] = []
    if not ds.get("SpecimenDescriptionSequence"):
        ds.SpecimenDescriptionSequence = Sequence([Dataset()])
        added.append("SpecimenDescriptionSequence")
    container = str(ds.get("ContainerIdentifier") or "SLIDE-1")
    for item in ds.SpecimenDescriptionSequence:
        for keyword, value in (("SpecimenIdentifier", container),
                               ("SpecimenUID", _derived_uid(ds, "specimen")),
                               ("IssuerOfTheSpecimenIdentifierSequence", Sequence()),
                               ("SpecimenPreparationSequence", Sequence())):
            if keyword not in item:
                setattr(item, keyword, value)
                added.append(f"SpecimenDescriptionSequence.{keyword}")
    return added


def conform(ds: Dataset, *, compressed_bytes: int | None = None) -> list[str]:
    """Add what the VL Whole Slide Microscopy Image IOD (PS3.3 A.32.8) requires and OHIF's
    microscopy viewer needs, where ``ds`` (a header: pixel data is never touched) lacks it;
    values present are kept (NumberOfFocalPlanes, which the IOD forbids without an extended
    depth of field, is removed). Returns the keywords added, "-keyword" for one removed
    (empty: nothing to do). Our pyramids
    are single-plane, single-path brightfield TILED_FULL levels with sRGB colour."""
    # an acquisition time, if none: when the content was made
    acquired = (str(ds.get("ContentDate") or ds.get("StudyDate") or "19700101")
                + str(ds.get("ContentTime") or "000000").split(".")[0])[:14].ljust(14, "0")
    defaults: list[tuple[str, object]] = [
        ("FrameOfReferenceUID", _derived_uid(ds, "frame-of-reference")),
        ("PositionReferenceIndicator", "SLIDE_CORNER"),
        ("ManufacturerModelName", "Yilian WSI converter"),
        ("DeviceSerialNumber", "1"),
        ("SoftwareVersions", "yilian 0.1"),
        ("AcquisitionDateTime", acquired),
        ("AcquisitionDuration", 0.0),
        ("AcquisitionContextSequence", Sequence()),
        ("ContainerIdentifier", "SLIDE-1"),
        ("IssuerOfTheContainerIdentifierSequence", Sequence()),
        ("ContainerTypeCodeSequence", Sequence([_code("433466003", "SCT",
                                                      "Microscope slide")])),
        ("ImageOrientationSlide", [0, -1, 0, -1, 0, 0]),
        ("TotalPixelMatrixFocalPlanes", 1),
        ("NumberOfOpticalPaths", 1),
        ("DimensionOrganizationType", "TILED_FULL"),
        ("ImagedVolumeDepth", 0.001),
        ("FocusMethod", "AUTO"),
        ("ExtendedDepthOfField", "NO"),
        ("VolumetricProperties", "VOLUME"),
        ("BurnedInAnnotation", "NO"),
        ("SpecimenLabelInImage", "NO"),
    ]
    added = []
    for keyword, value in defaults:
        if keyword not in ds:
            setattr(ds, keyword, value)
            added.append(keyword)
    if str(ds.get("ExtendedDepthOfField", "")) == "NO" and "NumberOfFocalPlanes" in ds:
        del ds.NumberOfFocalPlanes  # Type 1C: only with an extended depth of field
        added.append("-NumberOfFocalPlanes")
    if "TotalPixelMatrixOriginSequence" not in ds:
        # The WSI module's placing of the pixel matrix on the slide (rows run along -Y,
        # columns along -X, from the slide corner): OHIF's microscopy viewer needs both.
        origin = Dataset()
        origin.XOffsetInSlideCoordinateSystem, origin.YOffsetInSlideCoordinateSystem = 0.0, 0.0
        ds.TotalPixelMatrixOriginSequence = Sequence([origin])
        added.append("TotalPixelMatrixOriginSequence")
    if "DimensionIndexSequence" not in ds or "DimensionOrganizationSequence" not in ds:
        _dimensions(ds)
        added.append("DimensionIndexSequence")
    if compressed_bytes and str(ds.get("LossyImageCompression", "")) == "01" and \
            "LossyImageCompressionRatio" not in ds:
        raw = int(ds.Rows) * int(ds.Columns) * int(ds.SamplesPerPixel) * \
            int(ds.get("NumberOfFrames") or 1) * (int(ds.BitsAllocated) // 8)
        ds.LossyImageCompressionRatio = f"{raw / compressed_bytes:.2f}"[:16]
        added.append("LossyImageCompressionRatio")
    return added + _optical_path(ds) + _specimen(ds)


def build_pyramid(image: Image.Image, *, tile: int = 256, quality: int = 85,
                  spacing_mm: float = 0.00025, patient_name: str = "Anonymous",
                  patient_id: str = "0", study_uid: str | None = None,
                  description: str = "Pathology slide") -> list[bytes]:
    """The levels of a WSI pyramid as Part 10 files, base level first."""
    if tile < 16 or tile > 4096:
        raise ValueError("tile size must be between 16 and 4096 pixels")
    image = image.convert("RGB")
    common = {"study_uid": study_uid or generate_uid(), "series_uid": generate_uid(),
              "specimen_uid": generate_uid(),
              "patient_name": patient_name, "patient_id": patient_id,
              "description": description}
    frame_of_reference = generate_uid()
    size_mm = (image.width * spacing_mm, image.height * spacing_mm)
    out = []
    level = 0
    while True:
        out.append(to_bytes(_level(image, level, tile, quality, size_mm, common,
                                   frame_of_reference)))
        if image.width <= tile and image.height <= tile:
            return out
        image = image.reduce(2)
        level += 1


def convert_file(source: Path, out_dir: Path, **kwargs: object) -> list[Path]:
    """Convert an image file into a pyramid of DICOM files in ``out_dir``."""
    Image.MAX_IMAGE_PIXELS = None  # slides are large on purpose
    with Image.open(source) as image:
        levels = build_pyramid(image, **kwargs)  # type: ignore[arg-type]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, data in enumerate(levels):
        path = out_dir / f"level-{n}.dcm"
        path.write_bytes(data)
        paths.append(path)
    logger.info("wrote %d pyramid levels to %s", len(paths), out_dir)
    return paths
