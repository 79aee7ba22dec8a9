"""ICE server lists with short-lived coturn REST credentials (``use-auth-secret``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TurnCredential:
    """A TURN username/password pair valid until ``expires_at`` (Unix seconds)."""

    username: str
    credential: str
    expires_at: int


def turn_credential(
    secret: str, user_id: int | str, ttl_seconds: int, now: float | None = None
) -> TurnCredential:
    """coturn REST form: username ``<expiry>:<user_id>``, credential base64(HMAC-SHA1(secret, username))."""
    if not secret:
        raise ValueError("a TURN shared secret is required")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    expires_at = int(time.time() if now is None else now) + int(ttl_seconds)
    username = f"{expires_at}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def verify_turn_credential(
    secret: str, username: str, credential: str, now: float | None = None
) -> bool:
    """What coturn checks: the HMAC matches and the expiry is in the future."""
    expiry, _, _user = username.partition(":")
    if not (expiry.isascii() and expiry.isdigit()):
        return False
    if int(expiry) <= int(time.time() if now is None else now):
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest())
    return hmac.compare_digest(expected.decode("ascii"), credential)


def ice_servers(
    *,
    user_id: int | str,
    stun_urls: list[str],
    turn_urls: list[str],
    turn_secret: str,
    ttl_seconds: int,
    now: float | None = None,
) -> dict[str, Any]:
    """The ``/api/rtc/ice-servers`` body: configured STUN as is, TURN with fresh credentials.

    Nothing is added that is not configured: no public STUN server is ever a default.
    TURN URLs are listed only when a shared secret exists, since coturn would refuse them.
    """
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and turn_secret:
        cred = turn_credential(turn_secret, user_id, ttl_seconds, now)
        servers.append(
            {"urls": list(turn_urls), "username": cred.username, "credential": cred.credential}
        )
    return {"iceServers": servers, "ttl": int(ttl_seconds)}
