"""Demo images: a small CT series, a DR chest image and a pathology slide, and the township
DR's AE title (the demo loader shares the studies with its consultations)."""

from __future__ import annotations

import asyncio
import logging

from PIL import Image, ImageDraw, ImageFilter

from yilian.dicom.models import DicomModality
from yilian.dicom.store import Storage
from yilian.dicom.synth import ct_series, dr_image
from yilian.dicom.wsi import build_pyramid
from yilian.server.core.db import Database
from yilian.server.core.settings import Settings

logger = logging.getLogger(__name__)
DEMO_AE = "SHALANG_DR"


def slide_image(width: int = 2048, height: int = 1536, seed: int = 7) -> Image.Image:
    """An H&E-looking synthetic tissue section: pink stroma with purple nuclei."""
    import random

    rnd = random.Random(seed)
    img = Image.new("RGB", (width, height), (245, 240, 242))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width * 0.08, height * 0.1, width * 0.92, height * 0.9), fill=(226, 160, 190))
    for _ in range(width * height // 900):
        x, y = rnd.uniform(width * 0.1, width * 0.9), rnd.uniform(height * 0.12, height * 0.88)
        r = rnd.uniform(3, 7)
        shade = rnd.randint(70, 120)
        draw.ellipse((x - r, y - r * 0.8, x + r, y + r * 0.8), fill=(shade, 50, 140))
    return img.filter(ImageFilter.GaussianBlur(1.2))


def _demo_files() -> dict[str, list[bytes]]:
    patient = {"name": "Chen^Guilan", "id": "SL-2024-0042", "birth_date": "19570312",
               "sex": "F", "accession": "SL24CT0042", "description": "CT chest"}
    dr_patient = {"name": "Lin^Shufen", "id": "SL-2024-0107", "birth_date": "19630905",
                  "sex": "F", "accession": "SL24DR0107", "description": "DR chest PA"}
    return {
        "ct": ct_series(12, 256, patient=patient),
        "dr": [dr_image(768, patient=dr_patient)],
        "wsi": build_pyramid(slide_image(), patient_name="Chen^Guilan",
                             patient_id="SL-2024-0042", description="Lung biopsy, H&E"),
    }


async def load_demo_studies(db: Database, settings: Settings,
                            owners: dict[str, tuple[int, int]]) -> dict[str, str]:
    """Store the demo images (``ct``, ``dr``, ``wsi``), each as sent by the (institution id,
    user id) ``owners`` names, and register the DR's AE title for the DR's institution.
    Returns the Study Instance UID of each."""
    files = await asyncio.to_thread(_demo_files)
    async with db.write() as session:
        session.add(DicomModality(ae_title=DEMO_AE, institution_id=owners["dr"][0],
                                  description="Shalang Town Central Health Centre DR"))
    storage = Storage(settings.data_dir / "dicom", db)
    stored: dict[str, str] = {}
    try:
        for key in ("ct", "dr", "wsi"):
            institution_id, user_id = owners[key]
            source = f"cstore:{DEMO_AE}" if key == "dr" else "stow"
            outcomes = await storage.ingest(files[key], institution_id, source=source,
                                            user_id=user_id)
            failed = [o.message for o in outcomes if not o.ok]
            if failed:
                raise RuntimeError(f"demo {key} images were refused: {failed}")
            stored[key] = outcomes[0].study_uid
    finally:
        storage.close()
    logger.info("demo images loaded: %s", stored)
    return stored
