"""The modalities allowed to send by C-STORE (``yilian modality``): each one's calling AE title,
the institution it sends for, and the addresses it may call from (the DICOM network policy).

A modality registered without an address may call from this host only (loopback); ``any``
must be given explicitly. Host names are not accepted: the policy is checked against the peer
address of the TCP connection, and a name can be re-pointed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from yilian.dicom.models import DicomModality
from yilian.server.core.db import Database
from yilian.server.core.models import Institution

AE_RE = re.compile(r"^[\x21-\x5b\x5d-\x7e](?:[\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$")
ANY = "any"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Where a modality registered without addresses may call from: this host only.
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"),
                                 ipaddress.ip_network("::1/128"))
_EVERYWHERE = ("0.0.0.0/0", "::/0")


def parse_networks(values: Iterable[str]) -> list[str]:
    """Normalise ``--address`` values (an IP address, a network in CIDR notation, or ``any``)
    to network strings; raises ValueError naming a value that is none of these."""
    out: list[str] = []
    for raw in values:
        value = raw.strip()
        if value.lower() == ANY:
            nets = list(_EVERYWHERE)
        else:
            try:
                nets = [str(ipaddress.ip_network(value, strict=True))]
            except ValueError as exc:
                raise ValueError(
                    f"{raw!r} is not an IP address or network ({exc}); give e.g. 10.1.2.3 or "
                    f"10.1.0.0/16, or 'any' (host names are not accepted)") from None
        out.extend(n for n in nets if n not in out)
    return out


def peer_address(address: str) -> Address | None:
    """The peer's IP address as the policy compares it (an IPv4-mapped IPv6 address, as a
    dual-stack socket reports IPv4 peers, is the IPv4 address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


@dataclass(frozen=True)
class Modality:
    """One registered modality as the SCP checks it."""

    ae_title: str
    institution_id: int
    networks: tuple[Network, ...]

    def allows(self, ip: Address | None) -> bool:
        """May a connection from ``ip`` use this AE title?"""
        return ip is not None and any(ip in net for net in self.networks or LOOPBACK)


class ModalityPolicy:
    """The modality table as the SCP enforces it: who may associate from where."""

    def __init__(self, modalities: Sequence[Modality] = ()) -> None:
        self.by_title = {m.ae_title: m for m in modalities}
        self._networks = [n for m in modalities for n in (m.networks or LOOPBACK)]

    def check(self, ae_title: str, address: str) -> tuple[Modality | None, str]:
        """The modality a calling AE title from ``address`` is, or None and why not."""
        modality = self.by_title.get(ae_title.strip())
        if modality is None:
            return None, "unknown calling AE title"
        if not modality.allows(peer_address(address)):
            return None, "address not allowed for this AE title"
        return modality, ""

    def listed(self, address: str) -> bool:
        """May any registered modality call from this address? (Connections from addresses
        that none may share one connection quota.)"""
        ip = peer_address(address)
        return ip is not None and any(ip in net for net in self._networks)

    def titles(self) -> list[str]:
        """The registered calling AE titles."""
        return sorted(self.by_title)


async def load_policy(db: Database) -> ModalityPolicy:
    """Read the modality table."""
    async with db.read() as session:
        rows = await session.execute(select(DicomModality.ae_title,
                                            DicomModality.institution_id,
                                            DicomModality.allowed_networks))
        return ModalityPolicy([
            Modality(ae.strip(), inst, tuple(ipaddress.ip_network(n) for n in nets or ()))
            for ae, inst, nets in rows])


def _where(networks: Sequence[str]) -> str:
    if not networks:
        return "this host only"
    if set(_EVERYWHERE) <= set(networks):
        return ANY
    return ",".join(networks)


async def manage_modalities(db: Database, action: str, ae_title: str | None,
                            institution_id: int | None, description: str = "",
                            addresses: Sequence[str] = ()) -> list[str]:
    """Run one ``list``/``add``/``remove`` action on a migrated database; returns lines to
    print. ``add`` defines the whole row: its institution, description and addresses (none
    given: this host only)."""
    if action != "list" and not ae_title:
        raise ValueError(f"{action} needs an AE title")
    if ae_title is not None and not AE_RE.match(ae_title):
        raise ValueError(f"{ae_title!r} is not a valid AE title (1-16 characters, no backslash)")
    if addresses and action != "add":
        raise ValueError("--address is only for add")
    networks = parse_networks(addresses)
    async with db.write() as session:
        if action == "add":
            if institution_id is None or await session.get(Institution,
                                                           institution_id) is None:
                raise ValueError("add needs --institution-id of an existing institution")
            row = await session.scalar(select(DicomModality).where(
                DicomModality.ae_title == ae_title))
            if row is None:
                session.add(DicomModality(ae_title=ae_title, institution_id=institution_id,
                                          description=description,
                                          allowed_networks=networks))
            else:
                row.institution_id, row.description = institution_id, description
                row.allowed_networks = networks
        elif action == "remove":
            await session.execute(delete(DicomModality).where(
                DicomModality.ae_title == ae_title))
        rows = (await session.execute(
            select(DicomModality.ae_title, DicomModality.institution_id, Institution.name,
                   DicomModality.allowed_networks, DicomModality.description)
            .join(Institution, Institution.id == DicomModality.institution_id)
            .order_by(DicomModality.ae_title))).all()
    return [f"{ae:<16} {iid:>4}  {name}  from {_where(nets or [])}  {desc}".rstrip()
            for ae, iid, name, nets, desc in rows]
