"""The DICOM C-STORE (and C-ECHO) SCP for modalities, on pynetdicom.

pynetdicom runs each association in its own thread; received files are handed to the event
loop with ``asyncio.run_coroutine_threadsafe`` and stored through the same path as STOW-RS.
Only calling AE titles listed in ``dicom_modalities`` may associate; each maps to the
institution its files belong to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select

from yilian.dicom import keys as dicom_keys
from yilian.dicom.models import DicomModality
from yilian.dicom.parse import CANNOT_UNDERSTAND, DATASET_MISMATCH, TS_NOT_SUPPORTED
from yilian.dicom.store import Storage
from yilian.server.core import keys
from yilian.server.core.db import Database

logger = logging.getLogger(__name__)
STORE_TIMEOUT = 120.0
# C-STORE failure statuses (PS3.4 B.2.3); other reasons are reported as "cannot understand".
_CSTORE_STATUS = {DATASET_MISMATCH: 0xA900, CANNOT_UNDERSTAND: 0xC000, TS_NOT_SUPPORTED: 0xC000}


async def load_modalities(db: Database) -> dict[str, int]:
    """Known calling AE titles and their institutions."""
    async with db.read() as session:
        rows = await session.execute(select(DicomModality.ae_title,
                                            DicomModality.institution_id))
        return {ae.strip(): inst for ae, inst in rows}


class StoreSCP:
    """A running SCP; ``close()`` is idempotent."""

    def __init__(self, storage: Storage, db: Database, ae_title: str, host: str,
                 port: int) -> None:
        self.storage, self.db = storage, db
        self.ae_title, self.host, self.requested_port = ae_title, host, port
        self.port = 0
        self.modalities: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._ae: AE | None = None

    async def start(self) -> None:
        """Load the modality table and start listening."""
        self._loop = asyncio.get_running_loop()
        await self.refresh()
        ae = AE(ae_title=self.ae_title)
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:
                ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = 0
        self._ae = ae
        self._apply_allowlist()
        handlers: list[Any] = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, self._on_echo),
                    (evt.EVT_CONN_OPEN, self._on_open)]
        self._server = await asyncio.to_thread(
            ae.start_server, (self.host, self.requested_port), block=False,
            evt_handlers=handlers)
        self.port = int(self._server.server_address[1])
        logger.info("DICOM SCP %s listening on port %d", self.ae_title, self.port)

    async def refresh(self) -> None:
        """Re-read the modality table (new modalities are accepted without a restart)."""
        self.modalities = await load_modalities(self.db)
        self._apply_allowlist()

    def _apply_allowlist(self) -> None:
        if self._ae is not None:
            # An empty list would let anyone in; nobody may store then (see _on_store).
            self._ae.require_calling_aet = sorted(self.modalities) or [self.ae_title]

    def _on_open(self, event: evt.Event) -> None:
        assert self._loop is not None
        try:
            asyncio.run_coroutine_threadsafe(self.refresh(), self._loop).result(10)
        except Exception:
            logger.exception("could not refresh the modality table")

    def _on_echo(self, event: evt.Event) -> int:
        return 0x0000

    def _on_store(self, event: evt.Event) -> int:
        calling = str(event.assoc.requestor.ae_title).strip()
        institution_id = self.modalities.get(calling)
        if institution_id is None:
            logger.warning("C-STORE from unknown AE %s refused", calling)
            return 0xC000
        assert self._loop is not None
        data = event.encoded_dataset(include_meta=True)
        coro = self.storage.ingest([data], institution_id, source=f"cstore:{calling}",
                                   ip=event.assoc.requestor.address)
        try:
            outcome = asyncio.run_coroutine_threadsafe(coro, self._loop).result(STORE_TIMEOUT)[0]
        except Exception:
            logger.exception("C-STORE from %s failed", calling)
            return 0xA700
        if outcome.ok:
            return 0x0000
        logger.info("C-STORE from %s refused: %s", calling, outcome.message)
        return _CSTORE_STATUS.get(outcome.failure or 0, 0xC000)

    async def close(self) -> None:
        """Stop listening and end open associations; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)


async def dicom_scp_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the SCP for the application's lifetime when a DICOM port is configured."""
    settings = app[keys.SETTINGS]
    if settings.dicom.port is None:
        app[dicom_keys.DICOM_PORT] = None
        yield
        return
    scp = StoreSCP(app[dicom_keys.DICOM_STORAGE], app[keys.DATABASE], settings.dicom.ae_title,
                   settings.host, settings.dicom.port)
    await scp.start()
    app[dicom_keys.DICOM_SCP] = scp
    app[dicom_keys.DICOM_PORT] = scp.port
    try:
        yield
    finally:
        await scp.close()
