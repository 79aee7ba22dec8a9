"""Turning an ordinary large image into a DICOM VL Whole Slide Microscopy pyramid:
one TILED_FULL instance per level, JPEG baseline tiles, halving until one tile is left."""

from __future__ import annotations

import io
import logging
from datetime import datetime
from pathlib import Path

from PIL import Image
from pydicom import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from yilian.dicom.synth import new_instance, to_bytes

logger = logging.getLogger(__name__)
VL_WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"


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


def _level(image: Image.Image, level: int, tile: int, quality: int, spacing_mm: float,
           common: dict[str, str], frame_of_reference: str) -> Dataset:
    tiles = _tiles(image, tile, quality)
    ds = new_instance(VL_WSI, JPEGBaseline8Bit, common["study_uid"], common["series_uid"])
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PatientName, ds.PatientID = common["patient_name"], common["patient_id"]
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
    ds.Manufacturer = "Yilian"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"] if level == 0 else \
        ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"]
    ds.Rows = ds.Columns = tile
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = image.width, image.height
    ds.TotalPixelMatrixFocalPlanes, ds.NumberOfFocalPlanes, ds.NumberOfOpticalPaths = 1, 1, 1
    ds.NumberOfFrames = len(tiles)
    ds.DimensionOrganizationType = "TILED_FULL"
    org = Dataset()
    org.DimensionOrganizationUID = common["dimension_uid"]
    ds.DimensionOrganizationSequence = Sequence([org])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = \
        3, "YBR_FULL_422", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    ds.BurnedInAnnotation, ds.SpecimenLabelInImage = "NO", "NO"
    ds.FocusMethod, ds.ExtendedDepthOfField, ds.VolumetricProperties = "AUTO", "NO", "VOLUME"
    ds.ImagedVolumeWidth = image.width * spacing_mm
    ds.ImagedVolumeHeight = image.height * spacing_mm
    ds.ImagedVolumeDepth = 0.001
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem, origin.YOffsetInSlideCoordinateSystem = 0.0, 0.0
    ds.TotalPixelMatrixOriginSequence = Sequence([origin])
    # The WSI module's orientation of the pixel matrix on the slide (rows run along -Y,
    # columns along -X): viewers need it to place tiles (OHIF's microscopy viewer refuses
    # a slide without it).
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    measures = Dataset()
    measures.PixelSpacing = [spacing_mm, spacing_mm]
    measures.SliceThickness = 0.001
    frame_type = Dataset()
    frame_type.FrameType = ds.ImageType
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    shared.WholeSlideMicroscopyImageFrameTypeSequence = Sequence([frame_type])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    path = Dataset()
    path.OpticalPathIdentifier = "1"
    path.IlluminationTypeCodeSequence = Sequence([_code("111744", "DCM",
                                                        "Brightfield illumination")])
    path.IlluminationColorCodeSequence = Sequence([_code("414298005", "SCT", "Full Spectrum")])
    ds.OpticalPathSequence = Sequence([path])
    ds.ContainerIdentifier = common.get("container", "SLIDE-1")
    specimen = Dataset()
    specimen.SpecimenIdentifier = common.get("container", "SLIDE-1")
    specimen.SpecimenUID = common["specimen_uid"]
    specimen.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    specimen.SpecimenPreparationSequence = Sequence()
    ds.SpecimenDescriptionSequence = Sequence([specimen])
    ds.PixelData = encapsulate(tiles, has_bot=True)
    ds["PixelData"].VR = "OB"
    return ds


def build_pyramid(image: Image.Image, *, tile: int = 256, quality: int = 85,
                  spacing_mm: float = 0.00025, patient_name: str = "Anonymous",
                  patient_id: str = "0", study_uid: str | None = None,
                  description: str = "Pathology slide") -> list[bytes]:
    """The levels of a WSI pyramid as Part 10 files, base level first."""
    if tile < 16 or tile > 4096:
        raise ValueError("tile size must be between 16 and 4096 pixels")
    image = image.convert("RGB")
    common = {"study_uid": study_uid or generate_uid(), "series_uid": generate_uid(),
              "dimension_uid": generate_uid(), "specimen_uid": generate_uid(),
              "patient_name": patient_name, "patient_id": patient_id,
              "description": description}
    frame_of_reference = generate_uid()
    out = []
    level = 0
    while True:
        out.append(to_bytes(_level(image, level, tile, quality, spacing_mm, common,
                                   frame_of_reference)))
        if image.width <= tile and image.height <= tile:
            return out
        image = image.reduce(2)
        spacing_mm *= 2
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
