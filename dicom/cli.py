"""``yilian wsi`` (image -> DICOM WSI pyramid) and ``yilian deidentify``: file tools that need
no server or database; ``yilian dicom repair-slides``: stored slides brought up to date."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def _wsi_args(p: argparse.ArgumentParser) -> None:
    p.description = "Turn an ordinary large image (TIFF, PNG, JPEG...) into a DICOM VL Whole " \
                    "Slide Microscopy pyramid, one file per level."
    p.add_argument("image", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--tile", type=int, default=256, help="tile size in pixels (256)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality (85)")
    p.add_argument("--pixel-spacing", type=float, default=0.00025,
                   help="base level pixel spacing in mm (0.00025 = 40x)")
    p.add_argument("--patient-name", default="Anonymous")
    p.add_argument("--patient-id", default="0")
    p.add_argument("--study-uid")


def _wsi_run(args: argparse.Namespace) -> int:
    from yilian.dicom.wsi import convert_file

    try:
        paths = convert_file(args.image, args.out_dir, tile=args.tile, quality=args.quality,
                             spacing_mm=args.pixel_spacing, patient_name=args.patient_name,
                             patient_id=args.patient_id, study_uid=args.study_uid)
    except (OSError, ValueError) as exc:
        print(f"yilian wsi: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def _deid_args(p: argparse.ArgumentParser) -> None:
    p.description = "De-identify DICOM files (PS3.15 basic profile) with consistent UIDs."
    p.add_argument("inputs", type=Path, nargs="+", help="files or directories")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--retain-dates", action="store_true")
    p.add_argument("--retain-uids", action="store_true")
    p.add_argument("--patient-id", default="ANON")


def _deid_run(args: argparse.Namespace) -> int:
    from yilian.dicom.deid import Deidentifier

    files = [f for p in args.inputs for f in (sorted(p.rglob("*")) if p.is_dir() else [p])
             if f.is_file()]
    deid = Deidentifier(retain_dates=args.retain_dates, retain_uids=args.retain_uids,
                        patient_id=args.patient_id)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for n, f in enumerate(files):
        try:
            data = deid.deidentify_bytes(f.read_bytes())
        except ValueError as exc:
            print(f"yilian deidentify: {f}: {exc}", file=sys.stderr)
            failed += 1
            continue
        (args.out_dir / f"{n:05d}.dcm").write_bytes(data)
    return 1 if failed else 0


def _dicom_args(p: argparse.ArgumentParser) -> None:
    p.description = "Maintenance of the stored DICOM files."
    sub = p.add_subparsers(dest="dicom_command", required=True)
    r = sub.add_parser("repair-slides", help="bring stored whole-slide images up to the WSI "
                       "IOD (orientation, ICC profile...), keeping pixel data and UIDs")
    r.description = "Add what stored VL Whole Slide Microscopy instances made by Yilian's " \
                    "converter lack (ImageOrientationSlide, an sRGB ICC profile, dimension " \
                    "index...), file by file, pixel data and UIDs unchanged; refresh the " \
                    "index of every slide. Audited; running it again changes nothing. The " \
                    "server also does this on startup."
    r.add_argument("--dry-run", action="store_true", help="only list what would change")
    r.add_argument("--data-dir", help="the data directory (YILIAN_DATA_DIR)")
    r.add_argument("--database-url", help="SQLAlchemy URL (YILIAN_DATABASE_URL)")


def _dicom_run(args: argparse.Namespace) -> int:
    import asyncio

    from yilian.dicom.repair import repair_slides
    from yilian.dicom.workers import STAGING, StagingArea
    from yilian.server.core.db import Database
    from yilian.server.core.settings import settings_from_env

    settings = settings_from_env(data_dir=args.data_dir, database_url=args.database_url)
    root = settings.data_dir / "dicom"
    if not root.is_dir():
        print(f"yilian dicom: no DICOM store in {settings.data_dir}", file=sys.stderr)
        return 2

    async def run() -> tuple[list[str], int]:
        db = Database(settings.resolved_database_url)
        staging = StagingArea(root / STAGING)
        try:
            done = await repair_slides(root, staging.dir, db, dry_run=args.dry_run)
        finally:
            staging.close()
            await db.close()
        return [r.line() for r in done], sum(r.status == "failed" for r in done)

    try:
        lines, failed = asyncio.run(run())
    except Exception as exc:  # an unreadable or unmigrated database, say
        print(f"yilian dicom: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print(f"{len(lines)} slide instance(s), {failed} failed"
          + (" (dry run: nothing changed)" if args.dry_run else ""))
    return 1 if failed else 0


#: ``yilian`` subcommands of this package: name -> (configure parser, run(args) -> exit code).
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {
    "wsi": (_wsi_args, _wsi_run),
    "deidentify": (_deid_args, _deid_run),
    "dicom": (_dicom_args, _dicom_run),
}
