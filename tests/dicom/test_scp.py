"""The C-STORE/C-ECHO SCP against dcmtk's storescu/echoscu and a pynetdicom SCU."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.conftest import Api
from tests.dicom.conftest import dget
from yilian.dicom import keys as dicom_keys
from yilian.dicom.synth import ct_series

needs_dcmtk = pytest.mark.skipif(shutil.which("storescu") is None,
                                 reason="dcmtk (storescu, echoscu) is not installed")


async def _run(*cmd: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


@needs_dcmtk
async def test_storescu_and_echoscu(scp_server: TestServer, api: Api, tmp_path: Path) -> None:
    port = str(scp_server.app[dicom_keys.DICOM_PORT])
    files = ct_series(3, 64, patient={"name": "Modality^Sent", "id": "MOD-1"})
    paths = []
    for n, data in enumerate(files):
        p = tmp_path / f"{n}.dcm"
        p.write_bytes(data)
        paths.append(str(p))
    code, out = await _run("echoscu", "-aet", "SHALANG_DR", "-aec", "YILIAN", "127.0.0.1", port)
    assert code == 0, out
    code, out = await _run("storescu", "-aet", "SHALANG_DR", "-aec", "YILIAN", "127.0.0.1",
                           port, *paths)
    assert code == 0, out
    township = await api.login("township")
    status, found = await dget(township, "/dicomweb/instances", params={"PatientID": "MOD-1"})
    assert status == 200 and len(found) == 3
    # an unknown calling AE title is refused at association
    code, out = await _run("storescu", "-aet", "STRANGER", "-aec", "YILIAN", "127.0.0.1",
                           port, paths[0])
    assert code != 0
    assert "Rejected" in out or "reject" in out.lower(), out
    code, out = await _run("echoscu", "-aet", "STRANGER", "-aec", "YILIAN", "127.0.0.1", port)
    assert code != 0


async def test_pynetdicom_unknown_ae_refused(scp_server: TestServer) -> None:
    port = scp_server.app[dicom_keys.DICOM_PORT]

    def associate(aet: str) -> bool:
        ae = AE(ae_title=aet)
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN")
        ok = bool(assoc.is_established)
        if ok:
            status = assoc.send_c_echo()
            assert status.Status == 0
            assoc.release()
        return ok

    assert await asyncio.to_thread(associate, "SHALANG_DR")
    assert not await asyncio.to_thread(associate, "NOBODY")


async def test_cstore_refuses_broken_instances(scp_server: TestServer) -> None:
    port = scp_server.app[dicom_keys.DICOM_PORT]
    (data,) = ct_series(1, 32)

    def send() -> tuple[int, int]:
        import io

        import pydicom

        good = pydicom.dcmread(io.BytesIO(data))
        bad = pydicom.dcmread(io.BytesIO(data))
        bad.SOPInstanceUID = "1.2.3.999"
        del bad.StudyInstanceUID
        ae = AE(ae_title="SHALANG_DR")
        ae.add_requested_context(good.SOPClassUID, good.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN")
        assert assoc.is_established
        try:
            return assoc.send_c_store(good).Status, assoc.send_c_store(bad).Status
        finally:
            assoc.release()

    ok, refused = await asyncio.to_thread(send)
    assert ok == 0x0000 and refused == 0xA900


async def test_modality_command_adds_an_ae_title(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    main = "import sys; from yilian.server.cli import main; sys.exit(main(sys.argv[1:]))"
    base = [sys.executable, "-c", main, "modality"]
    env_args = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        env_args += ["--database-url", settings.database_url]
    code, out = await _run(*base, "add", "COUNTY_CT", "--institution-id", "3",
                           "--description", "county CT", *env_args)
    assert code == 0, out
    assert "COUNTY_CT" in out and "SHALANG_DR" in out
    code, out = await _run(*base, "add", "BAD\\AE", "--institution-id", "3", *env_args)
    assert code == 2 and "not a valid AE title" in out
    code, out = await _run(*base, "remove", "COUNTY_CT", *env_args)
    assert code == 0 and "COUNTY_CT" not in out
