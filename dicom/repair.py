"""Bringing stored whole-slide instances up to what the WSI IOD requires (``conform`` in
dicom/wsi.py): slides our converter made before it wrote ImageOrientationSlide, an ICC
profile and the rest.

Only slides our converter made (Manufacturer "Yilian") have their files rewritten: the
header gains the missing attributes, the pixel data is copied byte for byte, the UIDs stay.
A slide from another system is never rewritten (inventing its colour space would be wrong);
its index entry is only refreshed when the stored metadata no longer matches the file (an ICC
profile our metadata once left out). Each instance is repaired on its own: the new file is
written in the staging folder, renamed into place under a new name, the index row updated in
one transaction that checks the row is still the file it read (and the old file removed once
that has committed), and the repair audited. Running it again changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import Dataset
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from yilian.dicom.models import DicomInstance, DicomSeries, DicomStudy
from yilian.dicom.parse import (
    PIXEL_DATA,
    InstanceRejected,
    PreparedInstance,
    prepare_instance,
    read_dataset,
)
from yilian.dicom.store import publish
from yilian.dicom.wsi import MANUFACTURER, VL_WSI, conform
from yilian.server.core import audit
from yilian.server.core.db import Database

logger = logging.getLogger(__name__)

# What the stored JSON of an up-to-date slide of ours holds (orjson's compact form): a slide
# of ours without ImageOrientationSlide or an ICC profile is one to look at on startup.
_OURS = '"00080070":{"vr":"LO","Value":["' + MANUFACTURER + '"]}'
_MARKS = ('"00480102"', '"00282000"')


@dataclass
class Repair:
    """What the repair did, or would do (dry run), to one stored slide instance."""

    sop_uid: str
    study_uid: str
    # repaired | metadata (index refreshed) | current | failed; would-repair, would-refresh
    status: str
    added: list[str] = field(default_factory=list)
    message: str = ""

    def line(self) -> str:
        what = ", ".join(self.added) if self.added else self.message
        return f"{self.status:<14} {self.study_uid} {self.sop_uid}" + (f"  {what}" if what
                                                                          else "")


@dataclass
class _Plan:
    added: list[str]
    prepared: PreparedInstance | None = None  # the new file's (or the refreshed) index values
    temp: Path | None = None


class RepairError(Exception):
    """A stored slide that cannot be repaired (its file is unreadable or unexpected)."""


def _pixel_start(data: memoryview, raw: Any) -> int:
    """Where the pixel data element (its tag) starts in the file: from there on, the file
    is copied as it is."""
    if raw is None or raw.value_tell is None:
        raise RepairError("the file has no pixel data to keep")
    start = raw.value_tell - 12  # tag, VR, two reserved bytes, 32-bit length (explicit VR)
    head = bytes(data[start:start + 12])
    if start < 0 or head[:4] != b"\xe0\x7f\x10\x00" or head[4:6] not in (b"OB", b"OW"):
        raise RepairError("the pixel data is not where an explicit VR file keeps it")
    return start


def _plan(path: Path, row: Any, staging: Path, dry_run: bool) -> _Plan:
    """Read a stored slide, work out what it lacks and (unless a dry run) write its repaired
    file to the staging folder, checked by the same parser as received files. Blocking."""
    with _mapped(path) as view:
        return _plan_view(view, row, staging, dry_run)


@contextmanager
def _mapped(path: Path) -> Iterator[memoryview]:
    """A file mapped read-only (a slide is not read into memory whole). Parsed datasets may
    still hold views of it when this ends: the mapping is then left to the collector."""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mm)
    try:
        yield view
    finally:
        try:
            view.release()
            mm.close()
        except BufferError:
            pass


def _plan_view(view: memoryview, row: Any, staging: Path, dry_run: bool) -> _Plan:
    ds, raw = read_dataset(view)
    header = Dataset()
    header.file_meta = ds.file_meta
    for elem in ds:
        if elem.tag < PIXEL_DATA:
            header.add(ds[elem.tag])  # deferred values are read here, from the view
    del ds
    added: list[str] = []
    if str(header.get("Manufacturer", "")) == MANUFACTURER:
        compressed = sum(n for frame in (row.frames or []) for _, n in frame) or None
        added = conform(header, compressed_bytes=compressed)
    if not added:  # the file stays; its index entry is checked against it
        current = prepare_instance(view)
        current.data = None
        return _Plan([], current)
    if dry_run:
        return _Plan(added)
    start = _pixel_start(view, raw)
    temp = staging / f"{uuid.uuid4().hex}.tmp"
    try:
        header.save_as(temp, enforce_file_format=True)
        with open(temp, "ab") as out:
            for offset in range(start, len(view), 1 << 22):
                out.write(view[offset:offset + (1 << 22)])
            out.flush()
            os.fsync(out.fileno())
        with _mapped(temp) as new:
            prepared = prepare_instance(new)
        prepared.data = None
        _check(prepared, row, start, temp.stat().st_size - (len(view) - start))
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return _Plan(added, prepared, temp)


def _check(p: PreparedInstance, row: Any, old_start: int, new_start: int) -> None:
    """The repaired file is the same instance with the same frames, moved by the header."""
    if (p.sop_uid, p.study_uid, p.series_uid) != (row.sop_uid, row.study_uid,
                                                  row.series_uid):
        raise RepairError("the repaired file names another instance")
    shift = new_start - old_start
    moved = [[[o + shift, n] for o, n in frame] for frame in (row.frames or [])]
    if p.number_of_frames != row.number_of_frames or (row.frames and p.frames != moved):
        raise RepairError("the repaired file's frames are not the stored ones")


class _Changed(Exception):
    """The index row changed while its file was being repaired (another repair, say)."""


async def repair_slides(root: Path, staging: Path, db: Database, *, dry_run: bool = False,
                        outdated_only: bool = False) -> list[Repair]:
    """Repair every stored VL Whole Slide Microscopy instance (``outdated_only``: only our
    slides whose stored metadata shows them outdated, the cheap look on startup)."""
    cond = DicomInstance.sop_class_uid == VL_WSI
    if outdated_only:
        cond = and_(cond, DicomInstance.metadata_json.contains(_OURS),
                    or_(*(~DicomInstance.metadata_json.contains(m) for m in _MARKS)))
    async with db.read() as session:
        rows = list(await session.execute(
            select(DicomInstance.id, DicomInstance.sop_uid, DicomInstance.path,
                   DicomInstance.sha256, DicomInstance.frames, DicomInstance.number_of_frames,
                   DicomInstance.metadata_json, DicomStudy.study_uid,
                   DicomStudy.institution_id, DicomSeries.series_uid)
            .join(DicomStudy, DicomStudy.id == DicomInstance.study_ref)
            .join(DicomSeries, DicomSeries.id == DicomInstance.series_ref)
            .where(cond).order_by(DicomInstance.id)))
    out = []
    for row in rows:
        out.append(await _repair_one(root, staging, db, row, dry_run))
    changed = [r for r in out if r.status in ("repaired", "metadata")]
    if changed:
        logger.info("repaired %d stored slide instance(s)", len(changed))
    return out


async def repair_on_startup(root: Path, staging: Path, db: Database) -> None:
    """Repair our outdated slides before serving (the demo's from an older release, say);
    a failure is logged, never stops the server."""
    try:
        await repair_slides(root, staging, db, outdated_only=True)
    except Exception:
        logger.exception("the repair of stored slides failed; run `yilian dicom "
                         "repair-slides` to see why")


async def _repair_one(root: Path, staging: Path, db: Database, row: Any, dry_run: bool
                      ) -> Repair:
    result = Repair(row.sop_uid, row.study_uid, "current")
    try:
        plan = await asyncio.to_thread(_plan, root / row.path, row, staging, dry_run)
    except (OSError, ValueError, RepairError, InstanceRejected) as exc:
        result.status, result.message = "failed", str(exc)[:300]
        logger.warning("cannot repair slide instance %s: %s", row.sop_uid, exc)
        return result
    result.added = plan.added
    p = plan.prepared
    stale = p is not None and p.metadata_json != row.metadata_json
    if dry_run:
        result.status = "would-repair" if plan.added else "would-refresh" if stale else \
            "current"
        return result
    if p is None or not (plan.added or stale):
        return result
    new_rel = row.path if plan.temp is None else \
        f"{row.path.rsplit('/', 1)[0]}/{row.sop_uid}.{p.sha256[:12]}.dcm"
    published: list[Path] = []

    def move_in() -> None:
        if plan.temp is not None:
            publish([(plan.temp, root / new_rel)])
            published.append(root / new_rel)

    def index(session: Session) -> None:
        done = session.execute(
            update(DicomInstance)
            .where(DicomInstance.id == row.id, DicomInstance.sha256 == row.sha256)
            .values(path=new_rel, size=p.size, sha256=p.sha256, frames=p.frames,
                    metadata_json=p.metadata_json))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise _Changed

    try:
        await db.write_sync(index, before_commit=move_in)
    except BaseException as exc:
        if plan.temp is not None:
            await asyncio.shield(asyncio.to_thread(_cleanup, plan.temp, published))
        if not isinstance(exc, _Changed):
            raise
        result.status, result.message = "failed", "the instance changed meanwhile; run again"
        return result
    if new_rel != row.path:  # readers now find the new file through the index
        await asyncio.to_thread((root / row.path).unlink, True)
    result.status = "repaired" if plan.added else "metadata"
    await db.log_audit([audit.entry(
        None, "dicom_repair", "instance", row.sop_uid, institution_id=row.institution_id,
        detail={"study": row.study_uid, "added": plan.added[:40], "old_sha256": row.sha256,
                "new_sha256": p.sha256})])
    return result


def _cleanup(temp: Path, published: list[Path]) -> None:
    """After a failed transaction: the staged file, or the renamed one, removed."""
    temp.unlink(missing_ok=True)
    for path in published:
        path.unlink(missing_ok=True)

