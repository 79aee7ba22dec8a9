"""Start Orthanc (Debian packages ``orthanc`` + ``orthanc-dicomweb``) on loopback for a
side-by-side benchmark, with its storage in a scratch directory."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))


def dicomweb_plugin() -> Path | None:
    """The DICOMweb plugin library, if installed."""
    for d in PLUGIN_DIRS:
        for p in sorted(d.glob("libOrthancDicomWeb.so*")):
            return p
    return None


def available() -> bool:
    """Whether Orthanc and its DICOMweb plugin are installed."""
    return shutil.which("Orthanc") is not None and dicomweb_plugin() is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    """A scratch Orthanc with DICOMweb at ``/dicom-web`` and a DICOM port; ``stop()`` ends it."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> None:
        storage = self.work_dir / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "bench", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "HttpPort": self.http_port, "DicomPort": self.dicom_port, "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": True, "AuthenticationEnabled": False,
            "HttpServerEnabled": True, "DicomServerEnabled": True,
            "Plugins": [str(dicomweb_plugin())],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "DicomCheckCalledAet": False, "UnknownSopClassAccepted": True,
        }
        cfg = self.work_dir / "orthanc.json"
        cfg.write_text(json.dumps(config))
        log = (self.work_dir / "orthanc.log").open("wb")
        self.proc = subprocess.Popen(["Orthanc", str(cfg)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/system", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not start; see {self.work_dir / 'orthanc.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
