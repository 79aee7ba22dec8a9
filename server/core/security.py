"""Request-level safeguards: who the client really is behind a proxy, the headers that keep
patient data out of caches and frames, and an audit entry for every refused request."""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from yilian.server.core import keys
from yilian.server.core.auth import USER
from yilian.server.core.errors import YilianError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The browser client loads only its own files, talks only to this server, and may not be
#: framed (clickjacking); images and video arrive as blob:/data: URLs.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self' ws: wss:; font-src 'self' data:; "
       "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
#: The OHIF Viewer under /ohif/ (docs/dev/ohif-research.md §7): emscripten codecs compile with
#: ``new Function`` and WebAssembly, React injects <style> elements, tiles arrive as blob: URLs.
#: Still no inline script, no other origin, no framing. Only /ohif/ gets it.
OHIF_CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; "
            "connect-src 'self' blob: data:; font-src 'self' data:; worker-src 'self' blob:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_OHIF = "/ohif/"
_PATIENT_DATA = ("/api/", "/dicomweb/", "/dicomweb")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                   r"(?::[0-9]{1,5})?$")


def parse_networks(items: Iterable[str]) -> list[Network]:
    """``10.0.0.5``, ``10.0.0.0/8``, ``::1`` -> networks (ValueError on a bad one)."""
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip()]


def _in(address: str | None, networks: list[Network]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_middleware(trusted_proxies: list[Network]) -> Callable[..., Awaitable[
        web.StreamResponse]]:
    """Behind a trusted reverse proxy (nginx), take the client's address and scheme from
    ``X-Forwarded-For``/``-Proto``; from anyone else, those headers are ignored. Everything
    downstream (login limits, audit, URLs) then sees ``request.remote`` and ``.scheme`` right."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote
        if not _in(peer, trusted_proxies):
            return await handler(request)
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        client = peer
        for hop in reversed([h for h in hops if h]):  # right-most hop not a proxy of ours
            client = hop
            if not _in(hop, trusted_proxies):
                break
        try:
            ipaddress.ip_address(client or "")
        except ValueError:
            client = peer
        proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        changes: dict[str, str | None] = {"remote": client}
        if proto in ("http", "https"):
            changes["scheme"] = proto
        return await handler(request.clone(**changes))  # type: ignore[arg-type]

    return middleware


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: security headers on every answer, streamed ones included;
    patient data (the API, DICOMweb) is never cached."""
    h = response.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "no-referrer")
    h.setdefault("Content-Security-Policy", OHIF_CSP if request.path.startswith(_OHIF) else CSP)
    if request.path.startswith(_PATIENT_DATA):
        h["Cache-Control"] = "no-store"


@web.middleware
async def denials_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Audit every refused request to patient data (401, 403, 404 from our own rules): who,
    from where, what they asked for, why it was refused."""
    try:
        return await handler(request)
    except YilianError as exc:
        if exc.status in (401, 403, 404) and request.path.startswith(_PATIENT_DATA):
            user = request.get(USER)
            request.app[keys.AUDIT].record(
                user, "denied", "request", request.path, ip=request.remote,
                detail={"method": request.method, "status": exc.status, "code": exc.code})
        raise


def public_base(request: web.Request, public_url: str) -> str:
    """The server's own address as clients should use it: the configured public URL, or the
    address this request reached, with a Host header that is a plain host[:port] (anything
    else is not reflected: the listening socket's address is used instead)."""
    if public_url:
        return public_url.rstrip("/")
    host = request.headers.get("Host", "")
    if not _HOST.match(host):
        transport = request.transport
        sock = transport.get_extra_info("sockname") if transport is not None else None
        if not sock:
            host = "localhost"
        elif ":" in str(sock[0]):
            host = f"[{sock[0]}]:{sock[1]}"
        else:
            host = f"{sock[0]}:{sock[1]}"
    return f"{request.scheme}://{host}"
