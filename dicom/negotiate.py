"""Accept-header negotiation for WADO-RS: media types and transfer syntaxes."""

from __future__ import annotations

from dataclasses import dataclass

from yilian.dicom.multipart import parse_content_type, split_unquoted
from yilian.server.core.errors import YilianError

EXPLICIT_LE = "1.2.840.10008.1.2.1"


class NotAcceptable(YilianError):
    status = 406
    code = "not_acceptable"


@dataclass(frozen=True)
class Choice:
    multipart: bool
    media_type: str  # the (part) media type, e.g. application/dicom, image/jpeg, */*
    transfer_syntax: str | None  # None: not named, "*": as stored


def accepted(header: str | None) -> list[Choice]:
    """The Accept header's alternatives, best first (by q, then order)."""
    if not header or not header.strip():
        return [Choice(True, "*/*", None)]
    items: list[tuple[float, int, Choice]] = []
    for n, raw in enumerate(split_unquoted(header, ",")):
        media, params = parse_content_type(raw)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        ts = params.get("transfer-syntax")
        if media == "multipart/related":
            choice = Choice(True, params.get("type", "*/*").lower(), ts)
        else:
            choice = Choice(False, media, ts)
        items.append((-q, n, choice))
    return [c for _, _, c in sorted(items, key=lambda t: (t[0], t[1]))]


def instance_syntax(header: str | None) -> str:
    """For retrieving whole instances: the transfer syntax to send ("*" = as stored)."""
    for c in accepted(header):
        if c.media_type in ("application/dicom", "*/*", "*"):
            if c.transfer_syntax is None:
                return "*" if c.media_type != "application/dicom" else EXPLICIT_LE
            return c.transfer_syntax
    raise NotAcceptable("instances are served as multipart/related; "
                        'type="application/dicom"', details={"accept": header})


def metadata_acceptable(header: str | None) -> None:
    """Metadata is served as application/dicom+json only."""
    for c in accepted(header):
        if not c.multipart and c.media_type in ("application/dicom+json", "application/json",
                                                "*/*", "application/*"):
            return
    raise NotAcceptable("metadata is served as application/dicom+json",
                        details={"accept": header})


def rendered_type(header: str | None) -> str:
    """The image type for /rendered and /thumbnail."""
    for c in accepted(header):
        if c.media_type in ("image/jpeg", "image/png", "image/gif"):
            return c.media_type
        if c.media_type in ("*/*", "image/*"):
            return "image/jpeg"
    raise NotAcceptable("rendered images are served as image/jpeg, image/png or image/gif",
                        details={"accept": header})
