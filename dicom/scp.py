"""The DICOM C-STORE (and C-ECHO) SCP for modalities, on pynetdicom, behind a connection gate.

pynetdicom runs each association in its own thread; received files are handed to the event
loop with ``asyncio.run_coroutine_threadsafe`` and stored through the same path as STOW-RS.

The network policy (``dicom.modalities``): an association is accepted only from a registered
calling AE title calling from one of its addresses; anything else gets an A-ASSOCIATE-RJ
(permanent, "calling AE title not recognised" — for an unknown title and for a known title
from the wrong address alike, so a caller learns nothing about which titles exist), and is
logged and audited (``dicom_association_refused``).

Connections pass a gate first (``dicom.scp_gate``: TLS, connection limits, timeouts).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from yilian.dicom import keys as dicom_keys
from yilian.dicom.modalities import ModalityPolicy, load_policy, peer_address
from yilian.dicom.parse import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    NOT_AUTHORIZED,
    TS_NOT_SUPPORTED,
)
from yilian.dicom.scp_gate import GatedServer, Limits, Throttle, tls_context
from yilian.dicom.store import DUPLICATE_INSTANCE, Storage
from yilian.server.core import audit, keys
from yilian.server.core.db import Database
from yilian.server.core.settings import DicomSettings

logger = logging.getLogger(__name__)
STORE_TIMEOUT = 120.0
# C-STORE failure statuses: PS3.4 B.2.3 (A9xx, Cxxx) and the general ones PS3.7 C allows
# (0111 duplicate SOP instance, 0124 not authorised); others are reported as "cannot
# understand".
_CSTORE_STATUS = {DATASET_MISMATCH: 0xA900, CANNOT_UNDERSTAND: 0xC000, TS_NOT_SUPPORTED: 0xC000,
                  DUPLICATE_INSTANCE: 0x0111, NOT_AUTHORIZED: 0x0124}
# A-ASSOCIATE-RJ: rejected-permanent, by the DICOM UL service-user, calling AE title not
# recognised (PS3.8 9.3.4).
_REJECT = (0x01, 0x01, 0x03)


class StoreSCP:
    """A running SCP; ``close()`` is idempotent."""

    def __init__(self, storage: Storage, db: Database, settings: DicomSettings,
                 host: str) -> None:
        self.storage, self.db, self.settings = storage, db, settings
        self.ae_title, self.host = settings.ae_title, host
        self.port = 0
        self.policy = ModalityPolicy()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: GatedServer | None = None
        self._ae: AE | None = None
        self._notice = Throttle()

    async def start(self) -> None:
        """Load the modality table and start listening."""
        self._loop = asyncio.get_running_loop()
        await self.refresh()
        s = self.settings
        ae = AE(ae_title=self.ae_title)
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:
                ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = 0
        ae.acse_timeout, ae.dimse_timeout = s.acse_timeout, s.dimse_timeout
        ae.network_timeout = s.network_timeout
        # The gate enforces the limits; pynetdicom's own count must not refuse before it.
        ae.maximum_associations = 2 * s.max_associations
        self._ae = ae
        self._apply_titles()
        tls = tls_context(s)
        handlers: list[Any] = [(evt.EVT_REQUESTED, self._on_requested),
                               (evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, self._on_echo)]
        limits = Limits(s.max_associations, s.max_associations_per_address, s.acse_timeout,
                        s.network_timeout)
        server = await asyncio.to_thread(
            ae.make_server, (self.host, s.port or 0), evt_handlers=handlers,
            server_class=GatedServer, limits=limits, tls=tls,
            listed=lambda ip: self.policy.listed(ip))
        assert isinstance(server, GatedServer)
        self._server = server
        threading.Thread(target=server.serve_forever, name=f"AcceptorServer@{self.ae_title}",
                         daemon=True).start()
        self.port = int(server.server_address[1])
        logger.info("DICOM SCP %s listening on port %d%s", self.ae_title, self.port,
                    " (TLS)" if tls else "")
        host_ip = peer_address(self.host)
        if host_ip is None or not host_ip.is_loopback:
            for m in self.policy.by_title.values():
                if not m.networks:
                    logger.warning("modality %s has no address registered: it is accepted "
                                   "from this host only", m.ae_title)

    async def refresh(self) -> None:
        """Re-read the modality table (new modalities are accepted without a restart)."""
        self.policy = await load_policy(self.db)
        self._apply_titles()

    def _apply_titles(self) -> None:
        if self._ae is not None:
            # pynetdicom checks the titles again after _on_requested (an empty list would
            # let any title in: nobody may associate then).
            self._ae.require_calling_aet = self.policy.titles() or [self.ae_title]

    def _on_requested(self, event: evt.Event) -> None:
        """Check the calling AE title and the peer address; reject what the policy refuses.
        Fails closed: pynetdicom goes on to accept whatever a failing handler did not
        reject, so the association counts as rejected until the policy has said yes."""
        assoc = event.assoc
        assoc.is_rejected = True
        try:
            rq = assoc.requestor.primitive
            title = str(getattr(rq, "calling_ae_title", "") or "").strip()
            called = str(getattr(rq, "called_ae_title", "") or "").strip()
            address = str(assoc.requestor.address)
            try:
                assert self._loop is not None
                asyncio.run_coroutine_threadsafe(self.refresh(), self._loop).result(10)
                modality, why = self.policy.check(title, address)
            except Exception:
                logger.exception("could not check the DICOM association from %s", address)
                modality, why = None, "the modality table could not be read"
            if modality is not None:
                assoc.is_rejected = False
                return
            self._report_refusal(title, called, address, why)
        except Exception:
            logger.exception("refusing a DICOM association")
        assoc.acse.send_reject(*_REJECT)
        assoc.kill()

    def _report_refusal(self, title: str, called: str, address: str, why: str) -> None:
        repeats = self._notice((address, why))
        if repeats is None:
            return
        logger.warning("DICOM association refused: %s %r from %s%s", why, title, address,
                       f" ({repeats} more in the last minute)" if repeats else "")
        entry = audit.entry(None, "dicom_association_refused", "dicom_modality", title or "-",
                            ip=address, detail={"reason": why, "called_ae": called,
                                                "repeats": repeats})
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.db.log_audit([entry]), self._loop)
        future.add_done_callback(_log_failure)

    def _on_echo(self, event: evt.Event) -> int:
        return 0x0000

    def _on_store(self, event: evt.Event) -> int:
        calling = str(event.assoc.requestor.ae_title).strip()
        address = str(event.assoc.requestor.address)
        modality, why = self.policy.check(calling, address)
        if modality is None:  # removed from the table since the association began
            logger.warning("C-STORE from %s at %s refused: %s", calling, address, why)
            return 0x0124
        assert self._loop is not None
        data = event.encoded_dataset(include_meta=True)
        coro = self.storage.ingest([data], modality.institution_id, source=f"cstore:{calling}",
                                   ip=address)
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


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("a DICOM refusal could not be audited: %s", future.exception())


async def dicom_scp_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the SCP for the application's lifetime when a DICOM port is configured."""
    settings = app[keys.SETTINGS]
    if settings.dicom.port is None:
        app[dicom_keys.DICOM_PORT] = None
        yield
        return
    scp = StoreSCP(app[dicom_keys.DICOM_STORAGE], app[keys.DATABASE], settings.dicom,
                   settings.host)
    await scp.start()
    app[dicom_keys.DICOM_SCP] = scp
    app[dicom_keys.DICOM_PORT] = scp.port
    try:
        yield
    finally:
        await scp.close()
