"""Storing received instances: files under the data directory (temp file + rename, SHA-256),
and the patient/study/series/instance index, in one path shared by STOW-RS and C-STORE."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.dicom.models import DicomInstance, DicomPatient, DicomSeries, DicomStudy
from yilian.dicom.parse import DATASET_MISMATCH, NOT_AUTHORIZED, InstanceRejected, PreparedInstance
from yilian.dicom.workers import parser_pool
from yilian.server.core import audit
from yilian.server.core.db import Database, utcnow
from yilian.server.core.settings import default_dicom_workers

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one received instance."""

    sop_class_uid: str
    sop_uid: str
    study_uid: str = ""
    series_uid: str = ""
    failure: int | None = None
    message: str = ""
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None


STAGING = ".staging"  # under the storage root: files written, not yet indexed
# Threads writing received files to the staging directory (os.write releases the GIL).
WRITE_THREADS = 4
# A staged file older than this belongs to no upload still running (a part waits in staging
# until its whole upload has arrived, which over a slow link can take an hour or more).
STALE_STAGING_SECONDS = 24 * 3600


def _write_temp(staging: Path, data: bytes | memoryview) -> Path:
    """Write ``data`` under a temporary name in the staging directory (the parsing worker
    flushes it to the disk). Runs in a writer thread; ``os.write`` releases the GIL."""
    tmp = staging / f"{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def sweep_staging(staging: Path, older_than: float = STALE_STAGING_SECONDS) -> int:
    """Remove staged files left behind by a crash; returns how many were removed."""
    cutoff = time.time() - older_than
    removed = 0
    for entry in os.scandir(staging):
        try:
            if entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue  # another process's sweep got there first
    return removed


def _publish(pairs: list[tuple[Path, Path]]) -> None:
    made: set[Path] = set()
    for tmp, final in pairs:
        if final.parent not in made:
            final.parent.mkdir(parents=True, exist_ok=True)
            made.add(final.parent)
        os.replace(tmp, final)


def _discard(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


@dataclass
class Staged:
    """A received file after parsing: refused (``result`` is its Outcome), or prepared and
    written to the staging directory (``temp``), waiting to be indexed and renamed into
    place. ``temp`` is cleared once the file is published."""

    result: PreparedInstance | Outcome
    temp: Path | None = None


def instance_path(p: PreparedInstance) -> str:
    """Where an instance's file lives, relative to the storage root (UIDs are path-safe)."""
    return f"{p.study_uid}/{p.series_uid}/{p.sop_uid}.dcm"


class Storage:
    """The DICOM file store and its index."""

    def __init__(self, root: Path, db: Database, workers: int | None = None) -> None:
        self.root = root
        self.db = db
        self.staging = root / STAGING
        self.staging.mkdir(parents=True, exist_ok=True)
        swept = sweep_staging(self.staging)
        if swept:
            logger.warning("removed %d abandoned staged file(s) from %s", swept, self.staging)
        # Writing received files, apart from the default executor: a burst of uploads must
        # not hold up the file reads and renders of everyone else.
        self.io = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="dicom-write")
        self.parsers = parser_pool(default_dicom_workers() if workers is None else workers)

    def close(self) -> None:
        """Stop the writer threads (after the server has stopped taking uploads). The
        parsing workers are shared by the process and stop with it."""
        self.io.shutdown(wait=True, cancel_futures=True)

    def path_of(self, rel: str) -> Path:
        """Absolute path of a stored file."""
        return self.root / rel

    async def stage(self, data: bytes | memoryview, expected_study: str | None = None
                    ) -> Staged:
        """Write one received file to the staging directory and parse it in a worker.
        Writing before the index is checked lets the work overlap the rest of the upload; a
        file that turns out to be a duplicate or refused is discarded by ``commit``. Once
        ``data`` has been written it is not read again (the caller may reuse its buffer
        when this has returned or raised)."""
        loop = asyncio.get_running_loop()
        tmp = await loop.run_in_executor(self.io, _write_temp, self.staging, data)
        return await self.stage_file(tmp, expected_study)

    async def stage_file(self, tmp: Path, expected_study: str | None = None) -> Staged:
        """Parse a file written to the staging directory (``*.tmp``) in a worker, as
        ``stage`` does; the file is removed if it is refused or parsing fails."""
        loop = asyncio.get_running_loop()
        try:
            p = await self.parsers.parse(str(tmp), expected_study)
        except InstanceRejected as exc:
            await loop.run_in_executor(self.io, _discard, [tmp])
            return Staged(Outcome(exc.sop_class_uid, exc.sop_instance_uid,
                                  failure=exc.reason, message=exc.message))
        except BaseException:
            await asyncio.shield(loop.run_in_executor(self.io, _discard, [tmp]))
            raise
        return Staged(p, tmp)

    async def ingest(self, files: list[bytes] | list[memoryview], institution_id: int, *,
                     source: str, user_id: int | None = None,
                     expected_study: str | None = None, ip: str | None = None
                     ) -> list[Outcome]:
        """Store and index files for an institution; one outcome per file, in order."""
        results = await asyncio.gather(*(self.stage(d, expected_study) for d in files),
                                       return_exceptions=True)
        staged = [r for r in results if isinstance(r, Staged)]
        for r in results:
            if isinstance(r, BaseException):
                await discard_staged(staged)
                raise r
        return await self.commit(staged, institution_id, source=source, user_id=user_id, ip=ip)

    async def commit(self, staged: list[Staged], institution_id: int, *, source: str,
                     user_id: int | None = None, ip: str | None = None) -> list[Outcome]:
        """Index staged files for an institution and move them into place, in one
        transaction; one outcome per file, in order. Staged files that are not stored
        (duplicates, refusals, a failed transaction) are removed."""
        try:
            ready = [s for s in staged if isinstance(s.result, PreparedInstance)]
            results: dict[int, Outcome] = {}
            if ready:
                for attempt in range(3):
                    try:
                        results = await self._store(ready, institution_id, source, user_id,
                                                    ip)
                        break
                    except IntegrityError:
                        # Another process created the same study or series concurrently.
                        if attempt == 2:
                            raise
            return [results[id(s.result)] if isinstance(s.result, PreparedInstance)
                    else s.result for s in staged]
        finally:
            await discard_staged(staged)

    async def _store(self, staged: list[Staged], institution_id: int, source: str,
                     user_id: int | None, ip: str | None) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        ready = [s.result for s in staged if isinstance(s.result, PreparedInstance)]
        temp_of = {id(s.result): s for s in staged}
        async with self.db.read() as session:
            sops, owners = await _existing(session, [p.sop_uid for p in ready],
                                           list({p.study_uid for p in ready}))
        to_write: list[tuple[PreparedInstance, str]] = []
        seen: dict[str, str] = {}
        for p in ready:
            owner = owners.get(p.study_uid)
            prior = sops.get(p.sop_uid)
            base = Outcome(p.sop_class_uid, p.sop_uid, p.study_uid, p.series_uid)
            if p.sop_uid in seen:
                base.duplicate = seen[p.sop_uid] == p.sha256
                if not base.duplicate:
                    base.failure, base.message = DATASET_MISMATCH, (
                        "this SOP Instance UID is sent twice in the request with different "
                        "content")
            elif owner is not None and owner != institution_id or (
                    prior is not None and prior.institution_id != institution_id):
                base.failure, base.message = NOT_AUTHORIZED, (
                    "this study or instance belongs to another institution")
            elif prior is not None and prior.sha256 == p.sha256:
                base.duplicate = True
            else:
                to_write.append((p, instance_path(p)))
            seen.setdefault(p.sop_uid, p.sha256)
            out[id(p)] = base
        if not to_write:
            return out
        stale: list[Path] = []
        published: list[tuple[Path, Path]] = []
        done: list[Staged] = []
        audits: list[audit.Entry] = []

        def index(session: Session) -> None:
            """The index transaction (synchronous: one thread hop on SQLite)."""
            cache: dict[str, Any] = {}
            rows: list[dict[str, Any]] = []
            replaced: list[int] = []
            touched_series: set[int] = set()
            touched_studies: set[int] = set()
            for p, rel in to_write:
                try:
                    study, series = _study_and_series(session, cache, p, institution_id)
                except InstanceRejected as exc:
                    out[id(p)].failure, out[id(p)].message = exc.reason, exc.message
                    continue
                touched_series.add(series.id)
                touched_studies.add(study.id)
                rows.append(_instance_row(p, rel, study.id, series.id, source))
                item = temp_of[id(p)]
                assert item.temp is not None
                published.append((item.temp, self.root / rel))
                done.append(item)
                prior = sops.get(p.sop_uid)
                if prior is not None:  # a changed re-send replaces the stored instance
                    replaced.append(prior.id)
                    touched_series.add(prior.series_ref)
                    touched_studies.add(prior.study_ref)
                    if prior.path != rel:
                        stale.append(self.root / prior.path)
            if replaced:
                session.execute(delete(DicomInstance).where(DicomInstance.id.in_(replaced)))
            if rows:
                session.execute(insert(DicomInstance), rows)
            if replaced:  # instances moved or vanished: recount from the rows
                studies = _refresh_counts(session, touched_series, touched_studies)
            else:
                studies = _add_counts(session, cache, rows)
            audits.extend(
                audit.entry(None, "dicom_store", "study", uid, user_id=user_id,
                            institution_id=institution_id, ip=ip,
                            detail={"instances": n, "source": source})
                for uid, n in _per_study(to_write, out).items() if uid in studies)
            session.flush()
            _publish(published)  # renamed into place before COMMIT: a row never lacks its file

        try:
            await self.db.write_sync(index)
        except BaseException:
            stale.clear()
            published.clear()
            done.clear()
            raise
        for item in done:
            item.temp = None
        await self.db.log_audit(audits)
        if stale:
            await asyncio.to_thread(_discard, stale)
        logger.info("stored %d instance(s) for institution %d via %s", len(published),
                    institution_id, source)
        return out


async def discard_staged(staged: list[Staged]) -> None:
    """Remove the staged files that were not published."""
    temps = [s.temp for s in staged if s.temp is not None]
    if temps:
        await asyncio.to_thread(_discard, temps)
    for s in staged:
        s.temp = None


def _per_study(items: list[tuple[PreparedInstance, str]], out: dict[int, Outcome]
               ) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p, _ in items:
        if out[id(p)].ok:
            counts[p.study_uid] = counts.get(p.study_uid, 0) + 1
    return counts


@dataclass(frozen=True)
class _Prior:
    id: int
    sha256: str
    path: str
    series_ref: int
    study_ref: int
    institution_id: int


async def _existing(session: AsyncSession, sop_uids: list[str], study_uids: list[str]
                    ) -> tuple[dict[str, _Prior], dict[str, int]]:
    rows = await session.execute(
        select(DicomInstance.sop_uid, DicomInstance.id, DicomInstance.sha256,
               DicomInstance.path, DicomInstance.series_ref, DicomInstance.study_ref,
               DicomStudy.institution_id)
        .join(DicomStudy, DicomStudy.id == DicomInstance.study_ref)
        .where(DicomInstance.sop_uid.in_(sop_uids)))
    sops = {r[0]: _Prior(*r[1:]) for r in rows}
    owners = dict((await session.execute(
        select(DicomStudy.study_uid, DicomStudy.institution_id)
        .where(DicomStudy.study_uid.in_(study_uids)))).all())
    return sops, owners


def _study_and_series(session: Session, cache: dict[str, Any], p: PreparedInstance,
                            institution_id: int) -> tuple[DicomStudy, DicomSeries]:
    study = cache.get(p.study_uid)
    if study is None:
        study = session.scalar(select(DicomStudy).where(
            DicomStudy.study_uid == p.study_uid).with_for_update())
        if study is None:
            patient = _patient(session, p, institution_id)
            study = DicomStudy(
                study_uid=p.study_uid, institution_id=institution_id, patient_ref=patient.id,
                patient_id=patient.patient_id, patient_name=patient.patient_name,
                patient_birth_date=patient.birth_date, patient_sex=patient.sex, **p.study)
            session.add(study)
            session.flush()
        elif study.institution_id != institution_id:
            raise InstanceRejected("this study belongs to another institution", NOT_AUTHORIZED)
        cache[p.study_uid] = study
    series = cache.get(p.series_uid)
    if series is None:
        series = session.scalar(select(DicomSeries).where(
            DicomSeries.series_uid == p.series_uid))
        if series is None:
            series = DicomSeries(series_uid=p.series_uid, study_ref=study.id, **p.series)
            session.add(series)
            session.flush()
            cache.setdefault(_NEW_SERIES, set()).add(series.id)
        elif series.study_ref != study.id:
            raise InstanceRejected(
                f"series {p.series_uid} is already stored in another study",
                DATASET_MISMATCH, p.sop_class_uid, p.sop_uid)
        cache[p.series_uid] = series
    return study, series


def _patient(session: Session, p: PreparedInstance, institution_id: int
                   ) -> DicomPatient:
    patient = session.scalar(select(DicomPatient).where(
        DicomPatient.institution_id == institution_id,
        DicomPatient.patient_id == p.patient["patient_id"]))
    if patient is None:
        patient = DicomPatient(institution_id=institution_id, **p.patient)
        session.add(patient)
        session.flush()
    return patient


def _instance_row(p: PreparedInstance, rel: str, study_id: int, series_id: int, source: str
                  ) -> dict[str, Any]:
    return dict(
        sop_uid=p.sop_uid, series_ref=series_id, study_ref=study_id,
        sop_class_uid=p.sop_class_uid, instance_number=p.instance_number,
        transfer_syntax=p.transfer_syntax, rows=p.rows, columns=p.columns,
        number_of_frames=p.number_of_frames, path=rel, size=p.size, sha256=p.sha256,
        frames=p.frames, metadata_json=p.metadata_json, received_from=source[:32],
        created_at=utcnow())


_NEW_SERIES = "\x00new-series"  # cache key: ids of series created in this transaction


def _add_counts(session: Session, cache: dict[str, Any], rows: list[dict[str, Any]]
                      ) -> set[str]:
    """Count newly inserted instances into their series and studies (two UPDATEs each).

    Increments are done in SQL so concurrent writers on PostgreSQL cannot lose one; the study
    row is locked (``FOR UPDATE``) by :func:`_study_and_series` while its modalities change.
    """
    per_series: dict[int, int] = {}
    per_study: dict[int, int] = {}
    for r in rows:
        per_series[r["series_ref"]] = per_series.get(r["series_ref"], 0) + 1
        per_study[r["study_ref"]] = per_study.get(r["study_ref"], 0) + 1
    for sid, n in per_series.items():
        session.execute(update(DicomSeries).where(DicomSeries.id == sid)
                              .values(num_instances=DicomSeries.num_instances + n))
    new_series = cache.get(_NEW_SERIES, set())
    studies = {v.id: v for v in cache.values() if isinstance(v, DicomStudy)}
    series = [v for v in cache.values() if isinstance(v, DicomSeries)]
    for sid, n in per_study.items():
        study = studies[sid]
        mods = {m for m in study.modalities.split("\\") if m}
        mods |= {s.modality for s in series if s.study_ref == sid and s.modality}
        added_series = sum(1 for s in series if s.study_ref == sid and s.id in new_series)
        session.execute(update(DicomStudy).where(DicomStudy.id == sid).values(
            num_instances=DicomStudy.num_instances + n,
            num_series=DicomStudy.num_series + added_series,
            modalities="\\".join(sorted(mods))[:100], updated_at=utcnow()))
    return {studies[sid].study_uid for sid in per_study}


def _refresh_counts(session: Session, series_ids: set[int], study_ids: set[int]
                          ) -> set[str]:
    """Recount instances and series, drop emptied rows; returns the UIDs of live studies."""
    for sid in series_ids:
        n = session.scalar(select(func.count()).where(DicomInstance.series_ref == sid))
        if n:
            session.execute(update(DicomSeries).where(DicomSeries.id == sid)
                                  .values(num_instances=n))
        else:
            session.execute(delete(DicomSeries).where(DicomSeries.id == sid))
    live: set[str] = set()
    for sid in study_ids:
        mods = (session.execute(select(DicomSeries.modality).where(
            DicomSeries.study_ref == sid).distinct())).scalars().all()
        n_series = session.scalar(select(func.count()).where(DicomSeries.study_ref == sid))
        n_inst = session.scalar(select(func.count()).where(DicomInstance.study_ref == sid))
        if not n_series:
            session.execute(delete(DicomStudy).where(DicomStudy.id == sid))
            continue
        session.execute(update(DicomStudy).where(DicomStudy.id == sid).values(
            num_series=n_series, num_instances=n_inst, updated_at=utcnow(),
            modalities="\\".join(sorted(m for m in mods if m))[:100]))
        uid = session.scalar(select(DicomStudy.study_uid).where(DicomStudy.id == sid))
        if uid:
            live.add(uid)
    return live


