"""DICOM ingest and retrieval: Yilian against Orthanc, side by side, same files, same run.

Generates CT-like instances (512x512, 16-bit), then for each server (Yilian from
``yilian demo`` in a scratch data directory; Orthanc + its DICOMweb plugin when the Debian
packages are installed) measures: STOW-RS instances/s with 4 concurrent requests, C-STORE
instances/s over one association, QIDO study search p50/p95, series /metadata for a
500-instance series, single-frame and rendered-image p50.

    python bench/dicomweb_bench.py                 # 1,000 instances, QIDO at 100,000
    python bench/dicomweb_bench.py --quick         # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.orthanc_harness import Orthanc, available  # noqa: E402
from yilian.dicom.multipart import build_multipart, new_boundary  # noqa: E402
from yilian.dicom.synth import ct_series  # noqa: E402

YILIAN_MAIN = "import sys; from yilian.server.cli import main; sys.exit(main(sys.argv[1:]))"
READY = re.compile(r"Yilian listening on (http://\S+)")
SCP_READY = re.compile(r"DICOM SCP \S+ on port (\d+)")
UID_RE = re.compile(rb"\x08\x00\x18\x00UI(..)", re.S)


@dataclass
class Corpus:
    files: list[bytes]  # the STOW corpus
    cstore: list[bytes]  # distinct instances for C-STORE
    index: list[tuple[str, str, str, str]]  # (patient id, study, series, sop) per STOW file
    big_series: tuple[str, str]  # (study, series) of the big series
    patient_ids: list[str]


def _uids(data: bytes) -> tuple[str, str, str, str]:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return (str(ds.PatientID), ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


def make_corpus(total: int, big: int, per_study: int, cstore: int) -> Corpus:
    files = ct_series(big, patient={"name": "Bench^Big", "id": "BENCH-BIG",
                                    "study_date": "20240101"}, seed=0)
    n = 0
    while len(files) < total:
        count = min(per_study, total - len(files))
        files += ct_series(count, patient={"name": f"Bench^{n}", "id": f"BENCH-{n:05d}",
                                           "study_date": f"2024{1 + n % 12:02d}15"}, seed=n + 1)
        n += 1
    extra = ct_series(cstore, patient={"name": "Bench^Modality", "id": "BENCH-MOD"}, seed=999)
    index = [_uids(f) for f in files]
    return Corpus(files, extra, index, (index[0][1], index[0][2]),
                  sorted({i[0] for i in index}))


@dataclass
class Target:
    name: str
    base: str  # DICOMweb root
    headers: dict[str, str]
    dicom_port: int
    calling_ae: str
    pid: int
    results: dict[str, str] = field(default_factory=dict)


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants (Yilian's parsing workers)."""
    children: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0)
        todo += children.get(p, [])
    return total / os.sysconf("SC_CLK_TCK")


async def until_quiet(targets: list[Target], limit: float = 60.0) -> None:
    """Wait until no server under test is still busy with earlier work (below 5% of a core
    for half a second), so neither pays for the other's after-work (Orthanc, for one, goes
    on writing its index for seconds after a STOW has been answered)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = [_cpu_seconds(t.pid) for t in targets]
        await asyncio.sleep(0.5)
        busy = [(_cpu_seconds(t.pid) - b) / 0.5 for t, b in zip(targets, before, strict=True)]
        if max(busy) < 0.05:
            return


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def stow_all(t: Target, files: list[bytes], batch: int, workers: int) -> float:
    batches = [files[i:i + batch] for i in range(0, len(files), batch)]
    queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    timeout = aiohttp.ClientTimeout(total=600)

    async def worker(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            boundary = new_boundary()
            body = build_multipart([(f, {"Content-Type": "application/dicom"}) for f in chunk],
                                   boundary)
            headers = t.headers | {"Content-Type": f'multipart/related; '
                                   f'type="application/dicom"; boundary={boundary}',
                                   "Accept": "application/dicom+json"}
            async with http.post(f"{t.base}/studies", data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{t.name} STOW answered {r.status}")

    async with aiohttp.ClientSession(timeout=timeout) as http:
        start = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(workers)))
        return len(files) / (time.perf_counter() - start)


def cstore_all(t: Target, files: list[bytes]) -> float:
    import io

    import pydicom
    from pynetdicom import AE

    datasets = [pydicom.dcmread(io.BytesIO(f)) for f in files]
    ae = AE(ae_title=t.calling_ae)
    ae.add_requested_context(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)
    start = time.perf_counter()
    assoc = ae.associate("127.0.0.1", t.dicom_port, ae_title="ANY-SCP")
    if not assoc.is_established:
        raise RuntimeError(f"{t.name} refused the association")
    for ds in datasets:
        status = assoc.send_c_store(ds)
        if getattr(status, "Status", -1) != 0:
            raise RuntimeError(f"{t.name} C-STORE status {status}")
    assoc.release()
    return len(files) / (time.perf_counter() - start)


async def timed_gets(t: Target, urls: list[str], accept: str) -> list[float]:
    out = []
    async with aiohttp.ClientSession() as http:
        for url in urls:
            start = time.perf_counter()
            async with http.get(url, headers=t.headers | {"Accept": accept}) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{t.name} GET {url} answered {r.status}")
            out.append((time.perf_counter() - start) * 1000)
    return out


ROUNDS = 4  # ingest rounds; each server gets the same files in each round


def _split(items: list[bytes], n: int) -> list[list[bytes]]:
    """``items`` in ``n`` consecutive parts of (nearly) equal size."""
    return [items[i * len(items) // n:(i + 1) * len(items) // n] for i in range(n)]


async def measure_ingest(targets: list[Target], c: Corpus, args: argparse.Namespace) -> None:
    """STOW and C-STORE in four alternating rounds (A then B, then B then A, ...), so a load
    change on the machine during the run falls on both servers alike."""
    parts = _split(c.files, ROUNDS)
    cstores = _split(c.cstore, ROUNDS)
    stow_time = dict.fromkeys((t.name for t in targets), 0.0)
    cstore_time = dict.fromkeys((t.name for t in targets), 0.0)
    for n, (files, extra) in enumerate(zip(parts, cstores, strict=True)):
        rates = []
        for t in targets if n % 2 == 0 else targets[::-1]:
            # Neither server should pay for the other's after-work: writing back its files,
            # its own post-ingest housekeeping.
            await asyncio.to_thread(os.sync)
            await asyncio.sleep(args.settle)
            await until_quiet(targets)
            rate = await stow_all(t, files, args.batch, 4)
            stow_time[t.name] += len(files) / rate
            if extra:
                cstore_time[t.name] += len(extra) / await asyncio.to_thread(cstore_all, t,
                                                                            extra)
            rates.append(f"{t.name} {rate:.0f}/s")
        print(f"STOW round {n + 1} ({len(files)} instances): {', '.join(rates)}", flush=True)
    for t in targets:
        t.results["STOW-RS instances/s (4 concurrent)"] = \
            f"{len(c.files) / stow_time[t.name]:.0f}"
        t.results["C-STORE instances/s"] = f"{len(c.cstore) / cstore_time[t.name]:.1f}"


async def measure_reads(t: Target, c: Corpus, args: argparse.Namespace,
                        before_qido: Any = None) -> None:
    """QIDO, series metadata, frames and rendered images, one request at a time."""
    rnd = random.Random(7)
    if before_qido is not None:
        await before_qido()
    urls = [f"{t.base}/studies?PatientID={rnd.choice(c.patient_ids)}" for _ in range(args.queries)]
    await timed_gets(t, urls[:5], "application/dicom+json")
    q = await timed_gets(t, urls, "application/dicom+json")
    t.results["QIDO study search p50 / p95 ms"] = f"{pct(q, .5):.1f} / {pct(q, .95):.1f}"
    study, series = c.big_series
    m = await timed_gets(t, [f"{t.base}/studies/{study}/series/{series}/metadata"] * 5,
                         "application/dicom+json")
    t.results[f"series /metadata ms ({args.big} instances)"] = f"{statistics.median(m):.0f}"
    picks = [rnd.choice(c.index) for _ in range(args.queries)]
    inst = [f"{t.base}/studies/{s}/series/{se}/instances/{i}" for _, s, se, i in picks]
    f = await timed_gets(t, [u + "/frames/1" for u in inst],
                         'multipart/related; type="application/octet-stream"')
    t.results["single frame p50 ms"] = f"{pct(f, .5):.1f}"
    r = await timed_gets(t, [u + "/rendered" for u in inst[::-1]], "image/jpeg")
    t.results["rendered JPEG p50 ms"] = f"{pct(r, .5):.1f}"


def start_yilian(work: Path) -> tuple[subprocess.Popen[str], str, int]:
    cmd = [sys.executable, "-c", YILIAN_MAIN, "--log-level", "WARNING", "demo", "--data-dir",
           str(work / "yilian"), "--port", "0", "--dicom-port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT)
    assert proc.stdout is not None
    url, port = "", 0
    for line in proc.stdout:
        if m := READY.search(line):
            url = m.group(1)
        if m := SCP_READY.search(line):
            port = int(m.group(1))
        if url and port:
            threading.Thread(target=lambda: [None for _ in proc.stdout or []],
                             daemon=True).start()
            return proc, url, port
    raise RuntimeError(f"yilian exited with {proc.wait()} before it was ready")


def fill_index(db_path: Path, target: int) -> int:
    """Insert synthetic index rows directly until ``target`` instances are indexed."""
    con = sqlite3.connect(db_path, timeout=60)
    (have,) = con.execute("SELECT count(*) FROM dicom_instances").fetchone()
    need = target - have
    if need <= 0:
        return 0
    inst_id, path, meta = con.execute(
        "SELECT i.institution_id, d.path, d.metadata_json FROM dicom_instances d "
        "JOIN dicom_studies i ON i.id = d.study_ref LIMIT 1").fetchone()
    now = "2024-01-01 00:00:00"
    per = 50
    with con:
        for s in range((need + per - 1) // per):
            pid = f"SCALE-{s:06d}"
            cur = con.execute("INSERT INTO dicom_patients (institution_id, patient_id, "
                              "patient_name, birth_date, sex) VALUES (?,?,?,?,?)",
                              (inst_id, pid, f"Scale^{s}", "19600101", "M"))
            pref = cur.lastrowid
            n = min(per, need - s * per)
            cur = con.execute(
                "INSERT INTO dicom_studies (study_uid, institution_id, patient_ref, patient_id, "
                "patient_name, patient_birth_date, patient_sex, study_date, study_time, "
                "accession_number, study_id, study_description, referring_physician_name, "
                "modalities, num_series, num_instances, created_at, updated_at) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (f"2.25.9{s}", inst_id, pref, pid, f"Scale^{s}", "19600101", "M",
                 f"20{10 + s % 14:02d}0{1 + s % 9}1{s % 9}", "120000", f"S{s}", "1", "CT",
                 "", "CT", 1, n, now, now))
            study = cur.lastrowid
            cur = con.execute("INSERT INTO dicom_series (series_uid, study_ref, modality, "
                              "series_number, series_description, body_part, series_date, "
                              "num_instances) VALUES (?,?,?,?,?,?,?,?)",
                              (f"2.25.8{s}", study, "CT", 1, "", "CHEST", "", n))
            series = cur.lastrowid
            con.executemany(
                "INSERT INTO dicom_instances (sop_uid, series_ref, study_ref, sop_class_uid, "
                "instance_number, transfer_syntax, rows, columns, number_of_frames, path, "
                "size, sha256, frames, metadata_json, received_from, created_at) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(f"2.25.7{s}.{k}", series, study, "1.2.840.10008.5.1.4.1.1.2", k + 1,
                  "1.2.840.10008.1.2.1", 512, 512, 1, path, 0, "0" * 64, None, meta, "bench",
                  now) for k in range(n)])
    con.close()
    return need


async def login(url: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/auth/login", json={
                "username": "township", "password": "yilian-demo"}) as r:
            return str((await r.json())["token"])


async def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    corpus = await asyncio.to_thread(make_corpus, args.instances, args.big, args.per_study,
                                     args.cstore)
    mb = sum(len(f) for f in corpus.files) / 1e6
    print(f"corpus: {len(corpus.files)} CT instances 512x512x16 ({mb:.0f} MB) in "
          f"{len({i[1] for i in corpus.index})} studies, one series of {args.big}; "
          f"{len(corpus.cstore)} more for C-STORE; generated in {time.perf_counter() - t0:.0f} s",
          flush=True)
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="dicomweb-bench-") as tmp:
        work = Path(tmp)
        proc, url, port = start_yilian(work)
        orthanc = Orthanc(work / "orthanc") if args.orthanc and available() else None
        try:
            token = await login(url)
            y = Target("Yilian", f"{url}/dicomweb", {"Authorization": f"Bearer {token}"}, port,
                       "SHALANG_DR", proc.pid)
            targets.append(y)
            if orthanc is not None:
                orthanc.start()
                assert orthanc.proc is not None
                targets.append(Target("Orthanc", f"{orthanc.url}/dicom-web", {},
                                      orthanc.dicom_port, "BENCH", orthanc.proc.pid))
            elif args.orthanc:
                print("Orthanc or its DICOMweb plugin is not installed; Yilian only", flush=True)
            await measure_ingest(targets, corpus, args)

            async def scale() -> None:
                added = await asyncio.to_thread(fill_index, work / "yilian" / "yilian.sqlite3",
                                                args.qido_index)
                y.results["QIDO index size (instances)"] = f"{args.qido_index:,}"
                if added:
                    print(f"note: {added:,} of Yilian's {args.qido_index:,} indexed instances "
                          "were inserted as index rows directly (ingesting them would take too "
                          "long); the searches run over all of them", flush=True)

            await measure_reads(y, corpus, args, scale)
            for t in targets[1:]:
                await measure_reads(t, corpus, args)
                t.results["QIDO index size (instances)"] = \
                    f"{len(corpus.files) + len(corpus.cstore):,}"
        finally:
            proc.terminate()
            proc.wait(30)
            if orthanc is not None:
                orthanc.stop()
    keys = ["STOW-RS instances/s (4 concurrent)", "C-STORE instances/s",
            "QIDO index size (instances)", *[k for k in targets[0].results if k not in (
                "STOW-RS instances/s (4 concurrent)", "C-STORE instances/s",
                "QIDO index size (instances)")]]
    width = max(len(k) for k in keys) + 2
    print()
    print("| metric".ljust(width + 2) + " | " + " | ".join(t.name.ljust(12) for t in targets)
          + " |")
    print("|" + "-" * (width + 1) + "|" + "|".join("-" * 14 for _ in targets) + "|")
    for k in keys:
        print(f"| {k}".ljust(width + 2) + " | "
              + " | ".join(t.results.get(k, "-").ljust(12) for t in targets) + " |")
    print(json.dumps({t.name: t.results for t in targets}))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=1000)
    p.add_argument("--big", type=int, default=500, help="instances in the metadata series")
    p.add_argument("--per-study", type=int, default=50)
    p.add_argument("--batch", type=int, default=50, help="instances per STOW request")
    p.add_argument("--cstore", type=int, default=100)
    p.add_argument("--qido-index", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--settle", type=float, default=5.0,
                   help="seconds of quiet before each ingest round")
    p.add_argument("--no-orthanc", dest="orthanc", action="store_false")
    p.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = p.parse_args()
    if args.quick:
        args.instances, args.big, args.per_study, args.batch = 40, 20, 10, 10
        args.cstore, args.qido_index, args.queries, args.settle = 5, 2000, 20, 0.0
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
