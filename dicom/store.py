"""Storing received instances: files under the data directory (temp file + rename, SHA-256),
and the patient/study/series/instance index, in one path shared by STOW-RS and C-STORE.

A stored instance is never replaced: a re-send of its SOP Instance UID with the same data set
is a success that changes nothing (idempotent), one with other content is refused
(:data:`DUPLICATE_INSTANCE`), logged and audited, and what WADO serves stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.dicom.models import DicomInstance, DicomPatient, DicomSeries, DicomStudy
from yilian.dicom.parse import DATASET_MISMATCH, NOT_AUTHORIZED, InstanceRejected, PreparedInstance
from yilian.dicom.workers import STAGING, StagingArea, parser_pool
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


# Threads writing received files to the staging directory (os.write releases the GIL).
WRITE_THREADS = 4
# The failure status (C-STORE) and FailureReason (STOW-RS) of a re-sent SOP Instance UID with
# other content: "Duplicate SOP Instance" (PS3.7 Annex C, 0111H = 273).
DUPLICATE_INSTANCE = 0x0111
DUPLICATE_MESSAGE = "a different instance with this SOP Instance UID is stored"


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


def _dataset_offset(f: Any) -> int | None:
    """Where the data set starts in a Part 10 file: after the preamble, "DICM" and the file
    meta group, whose leading group length (explicit VR little endian) says how long it is."""
    head = f.read(144)
    if len(head) < 144 or head[128:138] != b"DICM\x02\x00\x00\x00UL":
        return None
    return 144 + int.from_bytes(head[140:144], "little")


def same_dataset(a: Path, b: Path) -> bool:
    """Do two Part 10 files hold the same data set, byte for byte, whatever file meta header
    (the wrapper the sending software adds) each has? (No, when one cannot be read.)"""
    try:
        return _compare(a, b)
    except OSError:
        return False


def _compare(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        oa, ob = _dataset_offset(fa), _dataset_offset(fb)
        if oa is None or ob is None or \
                os.fstat(fa.fileno()).st_size - oa != os.fstat(fb.fileno()).st_size - ob:
            return False
        fa.seek(oa)
        fb.seek(ob)
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def publish(pairs: list[tuple[Path, Path]]) -> None:
    """Move staged files into place (temp -> final), making their folders."""
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
        # This store's own staging folder; what a crashed process left is removed here.
        self.staging_area = StagingArea(root / STAGING)
        self.staging = self.staging_area.dir
        # Writing received files, apart from the default executor: a burst of uploads must
        # not hold up the file reads and renders of everyone else.
        self.io = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="dicom-write")
        self.parsers = parser_pool(default_dicom_workers() if workers is None else workers)

    def close(self) -> None:
        """Stop the writer threads (after the server has stopped taking uploads). The
        parsing workers are shared by the process and stop with it."""
        self.io.shutdown(wait=True, cancel_futures=True)
        self.staging_area.close()

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
        first: dict[str, PreparedInstance] = {}
        repeats: list[tuple[PreparedInstance, PreparedInstance]] = []
        changed: list[PreparedInstance] = []
        for p in ready:
            owner = owners.get(p.study_uid)
            prior = sops.get(p.sop_uid)
            base = out[id(p)] = Outcome(p.sop_class_uid, p.sop_uid, p.study_uid, p.series_uid)
            if p.sop_uid in first:  # sent twice in this request: the first copy counts
                repeats.append((p, first[p.sop_uid]))
            elif owner is not None and owner != institution_id or (
                    prior is not None and prior.institution_id != institution_id):
                base.failure, base.message = NOT_AUTHORIZED, (
                    "this study or instance belongs to another institution")
            elif prior is not None and prior.sha256 == p.sha256:
                base.duplicate = True
            elif prior is not None:
                changed.append(p)
            else:
                to_write.append((p, instance_path(p)))
            first.setdefault(p.sop_uid, p)
        refusals: list[audit.Entry] = []
        for p in changed:
            prior = sops[p.sop_uid]
            temp = temp_of[id(p)].temp
            assert temp is not None
            if prior.transfer_syntax == p.transfer_syntax and await asyncio.to_thread(
                    same_dataset, self.root / prior.path, temp):
                out[id(p)].duplicate = True  # the same data set in another file meta header
                continue
            out[id(p)].failure, out[id(p)].message = DUPLICATE_INSTANCE, DUPLICATE_MESSAGE
            logger.warning("refused a re-send of SOP instance %s with other content via %s "
                           "for institution %d (stored sha256 %s, sent %s)", p.sop_uid, source,
                           institution_id, prior.sha256[:16], p.sha256[:16])
            refusals.append(audit.entry(
                None, "dicom_store_refused", "instance", p.sop_uid, user_id=user_id,
                institution_id=institution_id, ip=ip,
                detail={"reason": "duplicate_sop_instance", "source": source,
                        "study": p.study_uid, "stored_sha256": prior.sha256,
                        "sent_sha256": p.sha256}))
        if to_write:
            await self._index(to_write, out, temp_of, institution_id, source, user_id, ip)
        if refusals:  # once the attempt stands (a conflicting insert retries it)
            await self.db.log_audit(refusals)
        for p, head in repeats:
            o, h = out[id(p)], out[id(head)]
            if p.sha256 != head.sha256:
                o.failure, o.message = DUPLICATE_INSTANCE, (
                    "this SOP Instance UID is sent twice in the request with different content")
            else:
                o.failure, o.message, o.duplicate = h.failure, h.message, h.ok
        return out

    async def _index(self, to_write: list[tuple[PreparedInstance, str]],
                     out: dict[int, Outcome], temp_of: dict[int, Staged], institution_id: int,
                     source: str, user_id: int | None, ip: str | None) -> None:
        """Index new instances and rename their files into place, in one transaction."""
        published: list[tuple[Path, Path]] = []
        done: list[Staged] = []
        audits: list[audit.Entry] = []

        def index(session: Session) -> None:
            """The index transaction (synchronous: one thread hop on SQLite)."""
            cache: dict[str, Any] = {}
            rows: list[dict[str, Any]] = []
            for p, rel in to_write:
                try:
                    study, series = _study_and_series(session, cache, p, institution_id)
                except InstanceRejected as exc:
                    out[id(p)].failure, out[id(p)].message = exc.reason, exc.message
                    continue
                rows.append(_instance_row(p, rel, study.id, series.id, source))
                item = temp_of[id(p)]
                assert item.temp is not None
                published.append((item.temp, self.root / rel))
                done.append(item)
            _drop_unused(session, cache, rows)
            if rows:
                session.execute(insert(DicomInstance), rows)
            audits.extend(
                audit.entry(None, "dicom_store", "study", uid, user_id=user_id,
                            institution_id=institution_id, ip=ip,
                            detail={"instances": n, "source": source})
                for uid, n in _add_counts(session, cache, rows).items())
            session.flush()

        try:
            # Files are renamed into place before COMMIT: a row never lacks its file.
            await self.db.write_sync(index, before_commit=lambda: publish(published))
        except BaseException:
            published.clear()
            done.clear()
            raise
        for item in done:
            item.temp = None
        await self.db.log_audit(audits)
        logger.info("stored %d instance(s) for institution %d via %s", len(published),
                    institution_id, source)


async def discard_staged(staged: list[Staged]) -> None:
    """Remove the staged files that were not published."""
    temps = [s.temp for s in staged if s.temp is not None]
    if temps:
        await asyncio.to_thread(_discard, temps)
    for s in staged:
        s.temp = None


@dataclass(frozen=True)
class _Prior:
    sha256: str
    path: str
    transfer_syntax: str
    institution_id: int


async def _existing(session: AsyncSession, sop_uids: list[str], study_uids: list[str]
                    ) -> tuple[dict[str, _Prior], dict[str, int]]:
    rows = await session.execute(
        select(DicomInstance.sop_uid, DicomInstance.sha256, DicomInstance.path,
               DicomInstance.transfer_syntax, DicomStudy.institution_id)
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
            patient = _patient(session, cache, p, institution_id)
            study = DicomStudy(
                study_uid=p.study_uid, institution_id=institution_id, patient_ref=patient.id,
                patient_id=patient.patient_id, patient_name=patient.patient_name,
                patient_birth_date=patient.birth_date, patient_sex=patient.sex, **p.study)
            session.add(study)
            session.flush()
            cache.setdefault(_NEW_STUDIES, []).append(study)
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


def _patient(session: Session, cache: dict[str, Any], p: PreparedInstance,
             institution_id: int) -> DicomPatient:
    patient = session.scalar(select(DicomPatient).where(
        DicomPatient.institution_id == institution_id,
        DicomPatient.patient_id == p.patient["patient_id"]))
    if patient is None:
        patient = DicomPatient(institution_id=institution_id, **p.patient)
        session.add(patient)
        session.flush()
        cache.setdefault(_NEW_PATIENTS, set()).add(patient.id)
    return patient


def _drop_unused(session: Session, cache: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Delete the study and patient rows this transaction created for instances refused
    after all (their series is stored in another study): a refused upload leaves no empty
    study behind."""
    used = {r["study_ref"] for r in rows}
    empty = [s for s in cache.get(_NEW_STUDIES, []) if s.id not in used]
    if not empty:
        return
    session.execute(delete(DicomStudy).where(DicomStudy.id.in_([s.id for s in empty])))
    for s in empty:
        del cache[s.study_uid]
    kept = {v.patient_ref for v in cache.values() if isinstance(v, DicomStudy)}
    unused = cache.get(_NEW_PATIENTS, set()) - kept
    if unused:
        session.execute(delete(DicomPatient).where(DicomPatient.id.in_(unused)))


def _instance_row(p: PreparedInstance, rel: str, study_id: int, series_id: int, source: str
                  ) -> dict[str, Any]:
    return dict(
        sop_uid=p.sop_uid, series_ref=series_id, study_ref=study_id,
        sop_class_uid=p.sop_class_uid, instance_number=p.instance_number,
        transfer_syntax=p.transfer_syntax, rows=p.rows, columns=p.columns,
        number_of_frames=p.number_of_frames, path=rel, size=p.size, sha256=p.sha256,
        frames=p.frames, metadata_json=p.metadata_json, received_from=source[:32],
        created_at=utcnow())


# cache keys: series ids, studies and patient ids created in this transaction
_NEW_SERIES, _NEW_STUDIES, _NEW_PATIENTS = "\x00new-series", "\x00new-studies", "\x00new-patients"


def _add_counts(session: Session, cache: dict[str, Any], rows: list[dict[str, Any]]
                      ) -> dict[str, int]:
    """Count newly inserted instances into their series and studies (two UPDATEs each);
    returns the instances added per Study Instance UID.

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
    return {studies[sid].study_uid: n for sid, n in per_study.items()}
