"""Run a real coturn ``turnserver`` with ``use-auth-secret`` on loopback for the TURN tests."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (turnserver cannot bind port 0)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port for turnserver")


@dataclass
class Coturn:
    """A running turnserver; ``urls`` are what the Yilian settings list."""

    process: subprocess.Popen[bytes]
    port: int
    secret: str
    log_path: Path

    @property
    def urls(self) -> list[str]:
        return [
            f"turn:127.0.0.1:{self.port}?transport=udp",
            f"turn:127.0.0.1:{self.port}?transport=tcp",
        ]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Terminate and reap; idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_coturn(workdir: Path, secret: str) -> Coturn:
    """Start turnserver on a free loopback port and wait until it accepts TCP connections."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise FileNotFoundError("turnserver (Debian package coturn) is not installed")
    port = free_port()
    relay_low = free_port()
    log_path = workdir / "turnserver.log"
    args = [
        binary,
        "-n",  # no configuration file: everything is on the command line
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--min-port={relay_low}",
        f"--max-port={min(relay_low + 200, 65535)}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        "--realm=yilian.test",
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--allow-loopback-peers",
        "--no-multicast-peers",
        "--verbose",  # logs each allocation with its user, which the tests check
        f"--userdb={workdir / 'turndb'}",
        "--simple-log",
        f"--log-file={log_path}",
        f"--pidfile={workdir / 'turnserver.pid'}",
    ]
    process = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir
    )
    turn = Coturn(process, port, secret, log_path)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"turnserver exited with {process.returncode}: {turn.log()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return turn
        except OSError:
            time.sleep(0.05)
    turn.stop()
    raise RuntimeError(f"turnserver did not start listening on {port}: {turn.log()[-2000:]}")
