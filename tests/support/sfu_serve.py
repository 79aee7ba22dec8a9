"""``yilian serve`` with the teaching broadcast relay switched on, for tests that start
server processes before ``create_app`` passes ``setup_rtc(..., broadcast=...)`` itself
(``serve_broadcasts`` is idempotent, so it stays correct after)."""

from __future__ import annotations

from typing import Any

from yilian.server import app as app_module
from yilian.server import cli
from yilian.server.clinic.teaching.media import TeachingMedia
from yilian.signaling.server import serve_broadcasts
from yilian.signaling.sfu.ports import RecordingTarget

_create_app = app_module.create_app


def create_app(settings: Any) -> Any:
    app = _create_app(settings)
    serve_broadcasts(app, TeachingMedia(settings.data_dir, RecordingTarget))
    return app


def main() -> int:
    """Run ``yilian`` with the relay on. Start it with ``python -c`` (see
    ``RelayServerProcess``): the DICOM workers' forkserver re-imports a ``-m`` main module
    and hung here doing so."""
    app_module.create_app = create_app  # type: ignore[assignment]
    return cli.main()
