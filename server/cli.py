"""The ``yilian`` command: ``serve`` and ``demo`` (and subcommands other packages add)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import getpass
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from yilian.dicom import cli as dicom_cli
from yilian.dicom import keys as dicom_keys
from yilian.dicom import workers
from yilian.dicom.modalities import manage_modalities
from yilian.server.core.db import Database
from yilian.server.core.errors import YilianError
from yilian.server.core.models import ROLES
from yilian.server.core.models.alliance import LEVELS
from yilian.server.core.settings import Settings, settings_from_env
from yilian.server.schema import migrate

logger = logging.getLogger("yilian")



def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (YILIAN_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port, 0 = any free port (YILIAN_PORT; 8080)")
    p.add_argument("--data-dir", help="where files and the SQLite database live (YILIAN_DATA_DIR)")
    p.add_argument("--database-url", help="SQLAlchemy URL, e.g. postgresql+asyncpg://… "
                   "(YILIAN_DATABASE_URL; default SQLite in the data directory)")
    p.add_argument("--dicom-port", help="DICOM SCP port, 0 = any free port, 'off' to disable "
                   "(YILIAN_DICOM_PORT; 11112)")
    p.add_argument("--workers", type=int, help="server processes sharing the HTTP port; more "
                   "than one needs YILIAN_REDIS_URL (YILIAN_WORKERS; 1)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="yilian", description="Yilian telemedicine server")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    _server_args(sub.add_parser("serve", help="run the server"))
    demo = sub.add_parser("demo", help="load the demo alliance into the data directory and serve")
    _server_args(demo)
    demo.add_argument("--reset", action="store_true",
                      help="wipe the data directory's database first")
    for name, (configure, _) in sorted(COMMANDS.items()):
        configure(sub.add_parser(name))
    return parser


def _modality_args(p: argparse.ArgumentParser) -> None:
    p.description = "List, add or remove the modalities (calling AE titles) allowed to " \
                    "C-STORE, and the addresses each may call from. add defines the whole " \
                    "entry; without --address the modality may call from this host only."
    p.add_argument("action", choices=("list", "add", "remove"))
    p.add_argument("ae_title", nargs="?")
    p.add_argument("--institution-id", type=int, help="the institution the modality sends for")
    p.add_argument("--description", default="")
    p.add_argument("--address", action="append", default=[], metavar="ADDRESS",
                   help="an IP address or network (10.1.2.3, 10.1.0.0/16) the modality may "
                   "call from; repeat for more; 'any' for anywhere")
    p.add_argument("--data-dir", help="the data directory (YILIAN_DATA_DIR)")
    p.add_argument("--database-url", help="SQLAlchemy URL (YILIAN_DATABASE_URL)")


def _modality_run(args: argparse.Namespace) -> int:
    settings = settings_from_env(data_dir=args.data_dir, database_url=args.database_url)

    async def run() -> list[str]:
        db = Database(settings.resolved_database_url)
        try:
            await migrate(db)
            return await manage_modalities(db, args.action, args.ae_title, args.institution_id,
                                           args.description, args.address)
        finally:
            await db.close()

    try:
        lines = asyncio.run(run())
    except ValueError as exc:
        print(f"yilian modality: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


def _admin_args(p: argparse.ArgumentParser) -> None:
    p.description = "Administration from the command line: create-user makes the first " \
                    "administrator of a new install (every other account is made in the " \
                    "web client or through POST /api/users)."
    sub = p.add_subparsers(dest="admin_command", required=True)
    c = sub.add_parser("create-user", help="create an account; the password is read from a "
                       "prompt (or one line of standard input), never from the command line")
    c.add_argument("--username", required=True)
    c.add_argument("--display-name", required=True)
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--institution", required=True, help="the institution's id or exact name")
    c.add_argument("--institution-level", choices=LEVELS, help="create the institution "
                   "named by --institution at this level when it does not exist yet (a new "
                   "install has none)")
    c.add_argument("--specialty", action="append", default=[], metavar="CODE",
                   help="a specialty code such as cardiology (specialists); repeat for more")
    c.add_argument("--title", help="the professional title (职称)")
    c.add_argument("--department", help="a department of the institution, by name")
    c.add_argument("--must-change-password", action="store_true",
                   help="make the user choose a new password at first login")
    c.add_argument("--data-dir", help="the data directory (YILIAN_DATA_DIR)")
    c.add_argument("--database-url", help="SQLAlchemy URL (YILIAN_DATABASE_URL)")


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _admin_run(args: argparse.Namespace) -> int:
    from yilian.server.core.admin_cli import create_user_from_cli

    settings = settings_from_env(data_dir=args.data_dir, database_url=args.database_url)
    try:
        password = _read_password()
        line = asyncio.run(create_user_from_cli(settings, args, password, migrate))
    except (ValueError, YilianError) as exc:
        print(f"yilian admin: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    print(line)
    return 0


# Subcommands besides serve and demo: name -> (configure parser, run(args) -> exit code)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {
    **dicom_cli.COMMANDS,
    "modality": (_modality_args, _modality_run),
    "admin": (_admin_args, _admin_run),
}


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the environment with the command-line flags on top."""
    return settings_from_env(
        host=args.host, port=args.port, data_dir=args.data_dir,
        database_url=args.database_url, dicom_port=args.dicom_port, workers=args.workers,
        **extra,
    )


def _listener(settings: Settings) -> socket.socket:
    """The HTTP socket, bound; with several workers each binds its own to the same port
    (SO_REUSEPORT: the kernel spreads new connections over them)."""
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if settings.workers > 1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    return sock


async def run_server(settings: Settings, *, on_ready: Callable[[web.Application], Any] | None
                     = None) -> None:
    """Serve until cancelled; print the ready line once listening."""
    from yilian.server.app import create_app

    app = create_app(settings)
    if on_ready is not None:
        app.on_startup.append(on_ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = _listener(settings)
    site = web.SockSite(runner, sock)
    await site.start()
    # What startup made (modules, the schema, the app) lives as long as the process: out of
    # the garbage collector's sight, its full collections no longer walk it on every request
    # burst (6-7 % of the loop's time under load before).
    gc.collect()
    gc.freeze()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"Yilian listening on http://{shown}:{port}", flush=True)
    dicom_port = app.get(dicom_keys.DICOM_PORT)
    if dicom_port:
        print(f"DICOM SCP {settings.dicom.ae_title} on port {dicom_port}", flush=True)
    # SIGTERM (systemd, docker stop) and SIGINT stop the server the same way: cleanup runs,
    # so buffered audit entries are written and connections closed before the process ends.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals
            pass
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


# glibc's malloc (mallopt parameters, see mallopt(3)).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_allocator() -> bool:
    """Keep large buffers in the heap for reuse instead of mapping and unmapping them.

    The server handles many multi-megabyte buffers (DICOM uploads, frames, files). glibc
    serves each from a fresh ``mmap`` and unmaps it when freed, so every upload faults in
    and zeroes new pages; on a virtual machine that returns free memory to its host that
    costs more than parsing the data (bench/dicomweb_bench.py: STOW-RS right after another
    server's ingest fell to ~200 instances/s; with this, ~400). Buffers up to 32 MiB now come
    from the heap, and up to 256 MiB of freed heap stays with the process. No-op off glibc;
    ``YILIAN_MALLOC_TUNING=off`` turns it off.
    """
    if os.environ.get("YILIAN_MALLOC_TUNING", "on").lower() in ("off", "0", "false", "no"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others
        return False
    ok = mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(32 << 20))
    ok &= mallopt(ctypes.c_int(_M_TRIM_THRESHOLD), ctypes.c_int(256 << 20))
    return bool(ok)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``yilian`` console script."""
    args = build_parser().parse_args(argv)
    # Patient data on disk (the database, DICOM files, the audit journal, the secret) is for
    # the service account only: files 0600, folders 0700, whatever the login's umask says.
    os.umask(0o077)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command in COMMANDS:
        return COMMANDS[args.command][1](args)
    tune_allocator()
    try:
        if args.command == "demo":
            settings = settings_from_args(args, demo=True)
            if args.data_dir is None and not settings.database_url:
                settings = settings.with_overrides(data_dir=Path("yilian-data"))
            from yilian.server.demo import prepare_demo

            asyncio.run(prepare_demo(settings, reset=args.reset))
        else:
            settings = settings_from_args(args)
        if settings.workers > 1:
            return serve_workers(settings)
        serve(settings)
    except KeyboardInterrupt:
        return 0
    except (ValueError, OSError) as exc:
        print(f"yilian: {exc}", file=sys.stderr)
        return 2
    finally:
        _stop_workers()
    return 0


def serve(settings: Settings) -> None:
    """Run one server process on the event loop ``settings.event_loop`` names."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if settings.event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:  # no build for this platform: asyncio's loop serves the same
            logger.warning("uvloop is not installed: serving on asyncio's own event loop")
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(run_server(settings))


def serve_workers(settings: Settings) -> int:
    """Run ``settings.workers`` server processes on one port until SIGTERM or SIGINT.

    This process migrates the database, reserves the port (a bound socket that never listens,
    so ``--port 0`` gives every worker the same port) and forks the workers; each binds its
    own socket with SO_REUSEPORT and serves. The workers share what must be shared through
    the database and Redis (signalling rooms, notifications, token revocations, teaching
    broadcasts: see docs/operations.md); socket.io takes websockets only. The DICOM SCP runs in
    the first worker. When one worker ends, the others are stopped too, and this process exits
    (with 1 if a worker failed): systemd or docker restarts the whole."""
    if not settings.redis_url:
        raise ValueError("several workers share their signalling state through Redis: set "
                         "YILIAN_REDIS_URL")

    async def prepare() -> None:
        db = Database(settings.resolved_database_url)
        try:
            await migrate(db)
        finally:
            await db.close()

    asyncio.run(prepare())
    reserved = _listener(settings)
    settings = settings.with_overrides(port=reserved.getsockname()[1])
    children = []
    for number in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # a worker, in its own process group: a Ctrl-C reaches it once, from us
            os.setpgid(0, 0)
            reserved.close()
            mine = settings if number == 0 else settings.with_overrides(dicom_port="off")
            code = 0
            try:
                serve(mine)
            except BaseException:
                logger.exception("worker %d failed", number)
                code = 1
            finally:
                _stop_workers()
            os._exit(code)
        children.append(pid)
    return _supervise(children)


def _supervise(children: list[int]) -> int:
    """Wait for the workers; pass SIGTERM and SIGINT on (once); stop all when one ends."""
    stopping = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    failed = False
    running = set(children)
    while running:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        running.discard(pid)
        failed |= os.waitstatus_to_exitcode(status) != 0
        forward(signal.SIGTERM, None)  # one is gone: stop the rest
    return 1 if failed else 0


def _stop_workers() -> None:
    """Stop the DICOM parsing workers (shared by the process) once the server is down."""
    workers.shutdown_pools()


if __name__ == "__main__":
    raise SystemExit(main())
