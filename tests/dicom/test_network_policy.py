"""The DICOM network policy: a calling AE title is accepted only from its registered addresses;
anything else is rejected at association (A-ASSOCIATE-RJ, calling AE title not recognised),
logged and audited. Real pynetdicom SCUs bound to chosen loopback source addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select

from tests.dicom.test_scp import _run
from yilian.dicom import keys as dicom_keys
from yilian.dicom.modalities import (
    LOOPBACK,
    Modality,
    ModalityPolicy,
    manage_modalities,
    parse_networks,
    peer_address,
)
from yilian.dicom.models import DicomModality
from yilian.server.core import keys
from yilian.server.core.models.audit import AuditEntry
from yilian.server.core.settings import Settings


@dataclass
class Association:
    """What a calling SCU saw."""

    established: bool
    rejection: tuple[int, int, int] | None = None
    echo: int | None = None


def associate(port: int, title: str, source: str = "127.0.0.1") -> Association:
    """Associate as ``title`` from the loopback address ``source``; C-ECHO if accepted."""
    ae = AE(ae_title=title)
    ae.add_requested_context(Verification)
    ae.acse_timeout = 10
    assoc = ae.associate("127.0.0.1", port, ae_title="YILIAN", bind_address=(source, 0))
    if assoc.is_established:
        status = assoc.send_c_echo()
        assoc.release()
        return Association(True, echo=int(status.Status))
    rj: Any = assoc.acceptor.primitive
    if assoc.is_rejected and rj is not None:
        return Association(False, (int(rj.result), int(rj.result_source), int(rj.diagnostic)))
    return Association(False)


def test_addresses_are_parsed_strictly() -> None:
    assert parse_networks(["10.1.2.3", "10.1.0.0/16", " 10.1.2.3 ", "fd00::/8"]) == [
        "10.1.2.3/32", "10.1.0.0/16", "fd00::/8"]
    assert parse_networks(["ANY"]) == ["0.0.0.0/0", "::/0"]
    for bad, words in (("10.1.2.3/16", "host bits"), ("pacs.example.org", "host names"),
                       ("10.1.2", "not an IP address"), ("", "not an IP address")):
        with pytest.raises(ValueError, match=words):
            parse_networks([bad])
    # a dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d
    assert peer_address("::ffff:10.1.2.3") == ipaddress.ip_address("10.1.2.3")
    assert peer_address("not an address") is None
    nets = tuple(ipaddress.ip_network(n) for n in parse_networks(["10.1.0.0/16"]))
    policy = ModalityPolicy([Modality("CT", 3, nets), Modality("LOCAL", 3, ())])
    assert policy.check("CT", "10.1.9.9")[0] is not None
    assert policy.check("CT", "::ffff:10.1.9.9")[0] is not None
    assert policy.check("CT", "10.2.0.1") == (None, "address not allowed for this AE title")
    assert policy.check("NOBODY", "10.1.9.9") == (None, "unknown calling AE title")
    # registered without an address: this host only
    assert Modality("LOCAL", 3, ()).networks == () and LOOPBACK
    assert policy.check("LOCAL", "127.0.0.1")[0] is not None
    assert policy.check("LOCAL", "::1")[0] is not None
    assert policy.check("LOCAL", "10.1.9.9")[1] == "address not allowed for this AE title"
    assert policy.listed("10.1.200.1") and policy.listed("127.0.0.9")
    assert not policy.listed("192.168.1.1")


async def test_title_and_address_must_match(scp_server: TestServer,
                                            caplog: pytest.LogCaptureFixture) -> None:
    app = scp_server.app
    port = app[dicom_keys.DICOM_PORT]
    assert port
    lines = await manage_modalities(app[keys.DATABASE], "add", "COUNTY_CT", 3, "county CT",
                                    ["127.0.0.5"])
    assert any(line.startswith("COUNTY_CT") and "from 127.0.0.5/32" in line for line in lines)
    caplog.set_level(logging.WARNING, logger="yilian.dicom.scp")

    # the demo DR, registered without an address, calls from this host
    assert await asyncio.to_thread(associate, port, "SHALANG_DR") == Association(True, echo=0)
    # the new modality from its own address (picked up without a restart) ...
    assert await asyncio.to_thread(associate, port, "COUNTY_CT", "127.0.0.5") == Association(
        True, echo=0)
    # ... and from anywhere else: the same rejection as an unknown title
    refused = (0x01, 0x01, 0x03)  # permanent, service-user, calling AE title not recognised
    for title, source in (("COUNTY_CT", "127.0.0.1"), ("COUNTY_CT", "127.0.0.6"),
                          ("NOBODY", "127.0.0.1")):
        got = await asyncio.to_thread(associate, port, title, source)
        assert got == Association(False, refused), (title, source, got)

    text = caplog.text
    assert "refused: address not allowed for this AE title 'COUNTY_CT' from 127.0.0.1" in text
    assert "refused: unknown calling AE title 'NOBODY' from 127.0.0.1" in text
    await app[keys.AUDIT].flush()
    async with app[keys.DATABASE].read() as session:
        rows = (await session.execute(
            select(AuditEntry.resource_id, AuditEntry.ip, AuditEntry.detail)
            .where(AuditEntry.action == "dicom_association_refused")
            .order_by(AuditEntry.id))).all()
    assert [(r[0], r[1], r[2]["reason"]) for r in rows] == [
        ("COUNTY_CT", "127.0.0.1", "address not allowed for this AE title"),
        ("COUNTY_CT", "127.0.0.6", "address not allowed for this AE title"),
        ("NOBODY", "127.0.0.1", "unknown calling AE title")]
    assert rows[0][2]["called_ae"] == "YILIAN"

    # narrowed to one address, the demo DR is refused from the others
    async with app[keys.DATABASE].read() as session:
        dr_institution = await session.scalar(select(DicomModality.institution_id).where(
            DicomModality.ae_title == "SHALANG_DR"))
    await manage_modalities(app[keys.DATABASE], "add", "SHALANG_DR", dr_institution, "",
                            ["127.0.0.1"])
    assert (await asyncio.to_thread(associate, port, "SHALANG_DR", "127.0.0.2")).rejection \
        == refused
    assert (await asyncio.to_thread(associate, port, "SHALANG_DR", "127.0.0.1")).established


async def test_modality_command_takes_addresses(settings: Settings) -> None:
    main = "import sys; from yilian.server.cli import main; sys.exit(main(sys.argv[1:]))"
    base = [sys.executable, "-c", main, "modality"]
    env_args = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        env_args += ["--database-url", settings.database_url]
    code, out = await _run(*base, "add", "COUNTY_CT", "--institution-id", "3",
                           "--address", "10.1.2.3", "--address", "10.1.0.0/16", *env_args)
    assert code == 0, out
    assert "from 10.1.2.3/32,10.1.0.0/16" in out and "SHALANG_DR" in out
    assert "this host only" in out  # the demo DR has no address
    code, out = await _run(*base, "add", "COUNTY_CT", "--institution-id", "3",
                           "--address", "10.1.2.3/16", *env_args)
    assert code == 2 and "host bits set" in out, out
    code, out = await _run(*base, "add", "COUNTY_CT", "--institution-id", "3",
                           "--address", "ct.example.org", *env_args)
    assert code == 2 and "host names are not accepted" in out, out
    code, out = await _run(*base, "add", "COUNTY_CT", "--institution-id", "3",
                           "--address", "any", *env_args)
    assert code == 0 and "COUNTY_CT" in out and "from any" in out, out
