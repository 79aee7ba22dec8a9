"""Passwords (argon2), bearer tokens with expiry and revocation, login rate limiting and the
lockout of an account after repeated wrong passwords."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import deque
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import NoReturn

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Select, bindparam, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.core import audit, keys
from yilian.server.core.cache import TtlCache
from yilian.server.core.db import Database, utcnow
from yilian.server.core.errors import Forbidden, TooManyRequests, Unauthorized
from yilian.server.core.models import AuthToken, User
from yilian.server.core.settings import AuthSettings

_hasher = PasswordHasher()
# Verifying against this keeps the timing of unknown usernames like that of known ones.
_DUMMY_HASH = _hasher.hash("not-a-real-password")

USER: web.RequestKey[User] = web.RequestKey("user")
#: Longer bearer tokens are refused unread (ours are 43 characters).
MAX_TOKEN_CHARS = 200
#: What an account that must first choose its password may call meanwhile.
PASSWORD_CHANGE_PATHS = frozenset({"/api/auth/password", "/api/auth/logout", "/api/me"})


class AccountLocked(TooManyRequests):
    """Too many wrong passwords for this account lately: refused whatever the password."""

    code = "account_locked"


class PasswordChangeRequired(Forbidden):
    """A new or reset account calls anything but the password change."""

    code = "password_change_required"


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    """The SHA-256 a token is stored (and announced as revoked) under."""
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(db: Database, user: User, ttl_seconds: int, *,
                      address: str | None = None, user_agent: str | None = None) -> str:
    """Create a bearer token for the user; only its SHA-256 is stored, with the client's
    address and browser (what the user sees of their sessions)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.write() as session:
        session.add(
            AuthToken(
                token_hash=token_digest(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds),
                client_address=(address or None) and address[:64],
                user_agent=(user_agent or None) and user_agent[:200],
            )
        )
    return token


async def revoke_user_tokens(session: AsyncSession, user_id: int, *,
                             keep: str | None = None) -> list[str]:
    """Revoke every live token of a user but ``keep`` (a digest), in the caller's
    transaction; returns their digests, for ``SessionHub.revoked`` once committed."""
    now = utcnow()
    where = [AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None),
             AuthToken.expires_at > now]
    if keep is not None:
        where.append(AuthToken.token_hash != keep)
    digests = list((await session.execute(select(AuthToken.token_hash).where(*where)))
                   .scalars())
    if digests:
        await session.execute(update(AuthToken).where(*where).values(revoked_at=now))
    return digests


async def user_token_digests(session: AsyncSession, user_id: int) -> list[str]:
    """The digests of a user's live tokens (to drop their cached copies after a change)."""
    rows = await session.execute(select(AuthToken.token_hash).where(
        AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None),
        AuthToken.expires_at > utcnow()))
    return list(rows.scalars())


async def revoke_token(db: Database, token: str, cache: TokenCache | None = None) -> None:
    """Revoke a token; revoking twice is harmless. The cache's revocation listeners hear of it
    once the revocation is committed (live sockets authenticated with it close)."""
    digest = token_digest(token)
    async with db.write() as session:
        await session.execute(
            update(AuthToken)
            .where(AuthToken.token_hash == digest, AuthToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    if cache is not None:
        cache.revoked(digest)


class TokenCache(TtlCache[str, User]):
    """Recently checked tokens, so a busy client is not one extra query per request.

    An entry lives ``ttl`` seconds (never past the token's expiry); logout through this process
    evicts at once, logout through another process is seen within ``ttl``. Holders of
    long-lived connections (the signalling sockets) subscribe with ``on_revoked`` to hear of a
    logout through this process at once.
    """

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        super().__init__(ttl, size)
        self._revoked_listeners: list[Callable[[str], None]] = []

    def on_revoked(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call ``listener(digest)`` after each revocation through this process; returns the
        function that unsubscribes it."""
        self._revoked_listeners.append(listener)
        return lambda: self._revoked_listeners.remove(listener)

    def revoked(self, digest: str) -> None:
        """A token was revoked: forget it and tell the listeners (synchronously, so nothing
        the token opened outlives the logout response)."""
        self.discard(digest)
        for listener in list(self._revoked_listeners):
            listener(digest)


def _live(now: datetime, *, pending_password: bool = False) -> tuple[ColumnElement[bool], ...]:
    """The one rule for a usable token: not revoked, not expired, its user active and (but
    for the password change itself) done with choosing their own password."""
    rule = (AuthToken.revoked_at.is_(None), AuthToken.expires_at > now, User.active.is_(True))
    return rule if pending_password else (*rule, User.must_change_password.is_(False))


async def token_holder(session: AsyncSession, digest: str, *, pending_password: bool = False
                       ) -> tuple[User, datetime] | None:
    """The user of a live token (by digest) and when the token expires; None when it is not
    live. Runs on the caller's session, so a check can share its transaction. An account
    that must still choose its password holds no live token but with ``pending_password``
    (the HTTP API, which then lets it call only the password change)."""
    return await session.run_sync(token_holder_sync, digest, pending_password=pending_password)


def token_holder_sync(session: Session, digest: str, *, pending_password: bool = False
                      ) -> tuple[User, datetime] | None:
    """:func:`token_holder` on a synchronous session."""
    found = session.execute(_HOLDER_PENDING if pending_password else _HOLDER,
                            {"digest": digest, "now": utcnow()}).first()
    return None if found is None else (found[0], found[1])


# Built once, run with parameters: every request whose token is not cached runs one.
def _holder(pending_password: bool) -> Select[User, datetime]:
    return (select(User, AuthToken.expires_at)
            .join(AuthToken, AuthToken.user_id == User.id)
            .where(AuthToken.token_hash == bindparam("digest"),
                   *_live(bindparam("now"), pending_password=pending_password)))  # type: ignore[arg-type]


_HOLDER_PENDING, _HOLDER = _holder(True), _holder(False)


async def live_tokens(db: Database, digests: Collection[str]) -> set[str]:
    """Which of these token digests are still live; one query per 500 of them."""
    wanted, now = sorted(set(digests)), utcnow()
    live: set[str] = set()
    async with db.read() as session:
        for start in range(0, len(wanted), 500):
            rows = await session.execute(
                select(AuthToken.token_hash)
                .join(User, User.id == AuthToken.user_id)
                .where(AuthToken.token_hash.in_(wanted[start : start + 500]), *_live(now))
            )
            live.update(rows.scalars())
    return live


async def authenticate_token(db: Database, token: str | None,
                             cache: TokenCache | None = None) -> User | None:
    """The active user a live, unrevoked token belongs to, or None."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    digest = token_digest(token)
    if cache is not None and (user := cache.get(digest)) is not None:
        return user
    found = await db.read_sync(
        lambda session: token_holder_sync(session, digest, pending_password=True))
    if found is None:
        return None
    user, expires_at = found
    if cache is not None:
        cache.put(digest, user, (expires_at - utcnow()).total_seconds())
    return user


def bearer_token(request: web.Request) -> str | None:
    """The token from ``Authorization: Bearer …``, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def authenticate(request: web.Request) -> User:
    """The caller of this request, or raise 401."""
    cached = request.get(USER)
    if cached is not None:
        return cached
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send Authorization: Bearer <token>; log in at /api/auth/login")
    user = await authenticate_token(request.app[keys.DATABASE], token,
                                    request.app[keys.TOKEN_CACHE])
    if user is None:
        raise Unauthorized("the token is invalid, expired or revoked", code="invalid_token")
    if user.must_change_password and request.path not in PASSWORD_CHANGE_PATHS:
        raise PasswordChangeRequired(
            "choose your own password first: POST /api/auth/password",
            details={"path": "/api/auth/password"})
    hub = request.app.get(keys.SESSIONS)
    if hub is not None:
        hub.seen(token_digest(token))
    request[USER] = user
    return user


class LoginLimiter:
    """Sliding-window limits on failed logins: per account first, per client address second.

    Ten wrong passwords for one account lock that account (not everyone) for up to a minute;
    an address is only stopped when it fails far more often (password spraying across many
    accounts). Behind a reverse proxy, list it in ``YILIAN_TRUSTED_PROXIES`` so the address is
    the client's, not the proxy's. Memory is bounded: at most ``max_keys`` windows are kept.
    """

    def __init__(self, per_account: int, per_address: int | None = None,
                 max_keys: int = 100_000) -> None:
        self.per_account = per_account
        self.per_address = per_address if per_address is not None else per_account * 10
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _window(self, key: str) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        cutoff = time.monotonic() - 60
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def _keys(self, username: str, ip: str | None) -> list[tuple[str, int]]:
        keys = [(f"u:{username.lower()}", self.per_account)]
        if ip:
            keys.append((f"ip:{ip}", self.per_address))
        return keys

    def check(self, username: str, ip: str | None) -> None:
        """Raise 429 when this account (or, far more often, this address) failed too often in
        the last minute."""
        for key, limit in self._keys(username, ip):
            q = self._window(key)
            if q is not None and len(q) >= limit:
                retry = int(60 - (time.monotonic() - q[0])) + 1
                raise TooManyRequests(
                    "too many failed logins; try again later",
                    details={"retry_after_seconds": retry,
                             "scope": "account" if key.startswith("u:") else "address"},
                )

    def attempt(self, username: str, ip: str | None) -> float:
        """Check the limits and count this attempt at once, before the password is looked at:
        attempts made side by side each take a place in the window, so no more than the limit
        are ever being checked. Returns the attempt's stamp for :meth:`succeeded`."""
        self.check(username, ip)
        if len(self._failures) >= self.max_keys:
            for key in list(self._failures):
                self._window(key)  # drop what has aged out
            if len(self._failures) >= self.max_keys:
                self._failures.clear()
        now = time.monotonic()
        for key, _ in self._keys(username, ip):
            self._failures.setdefault(key, deque()).append(now)
        return now

    def succeeded(self, username: str, ip: str | None = None,
                  stamp: float | None = None) -> None:
        """A good password clears the account's failures, and takes back its own attempt from
        the address's window (many staff behind one hospital address log in rightly)."""
        self._failures.pop(f"u:{username.lower()}", None)
        q = self._failures.get(f"ip:{ip}") if ip and stamp is not None else None
        if q is not None:
            try:
                q.remove(stamp)  # type: ignore[arg-type]
            except ValueError:
                pass


async def check_credentials(db: Database, username: str, password: str, *,
                            lockout: AuthSettings | None = None,
                            ip: str | None = None) -> User | None:
    """The user if the password matches; argon2 runs off the event loop.

    With ``lockout`` (the login route), every attempt on an existing account is counted before
    its password is looked at (:func:`reserve_attempt`): the ``lockout_attempts``-th wrong one,
    each within ``lockout_window_seconds`` of the previous, locks the account for
    ``lockout_seconds``, and attempts made side by side cannot take more guesses than that. A
    locked account is refused (429 ``account_locked``) whatever the password, so the answer
    says nothing about it. Failures and locks are audited."""
    username = username.strip().lower()
    async with db.read() as session:
        user = (
            await session.execute(select(User).where(User.username == username))
        ).scalar_one_or_none()
    count = 0
    if lockout is not None and user is not None:
        count = await reserve_attempt(db, user.id, lockout)
    ok = await asyncio.to_thread(
        verify_password, user.password_hash if user is not None else None, password
    )
    if user is None:
        return None
    if not ok:
        if lockout is not None:
            await attempt_failed(db, user, count, lockout, ip)
        return None
    if lockout is not None:
        await attempt_succeeded(db, user.id)
    if not user.active:
        return None
    return user


def _locked(seconds: float) -> AccountLocked:
    return AccountLocked(
        "this account is locked after too many wrong passwords; try again later or ask "
        "an administrator to unlock it",
        details={"retry_after_seconds": max(1, int(seconds) + 1), "scope": "account"})


async def _refuse_locked(db: Database, user_id: int) -> NoReturn:
    async with db.read() as session:
        until = (await session.execute(
            select(User.locked_until).where(User.id == user_id))).scalar_one_or_none()
    seconds = (until - utcnow()).total_seconds() if until is not None else 0.0
    raise _locked(seconds)


async def reserve_attempt(db: Database, user_id: int, lockout: AuthSettings) -> int:
    """Count a password attempt against the account before the password is checked; returns
    how many attempts the window now holds. In one statement, so attempts made side by side
    each take their own place: while the account is locked, or the window already holds
    ``lockout_attempts`` attempts still being checked, it is 429 ``account_locked``."""
    now = utcnow()
    window_start = now - timedelta(seconds=lockout.lockout_window_seconds)
    fresh = or_(User.last_failed_login_at.is_(None), User.last_failed_login_at < window_start)
    async with db.write() as session:
        count = (await session.execute(
            update(User).where(
                User.id == user_id,
                or_(User.locked_until.is_(None), User.locked_until <= now),
                or_(fresh, User.failed_logins < lockout.lockout_attempts),
            ).values(failed_logins=case((fresh, 1), else_=User.failed_logins + 1),
                     last_failed_login_at=now)
            .returning(User.failed_logins))).scalar_one_or_none()
    if count is None:
        await _refuse_locked(db, user_id)
    return count


async def attempt_succeeded(db: Database, user_id: int) -> None:
    """The right password: the count starts again, unless an attempt beside this one locked
    the account meanwhile (then this one is refused too)."""
    now = utcnow()
    async with db.write() as session:
        ok = (await session.execute(
            update(User).where(User.id == user_id,
                               or_(User.locked_until.is_(None), User.locked_until <= now))
            .values(failed_logins=0).returning(User.id))).scalar_one_or_none()
    if ok is None:
        await _refuse_locked(db, user_id)


async def attempt_failed(db: Database, user: User, count: int, lockout: AuthSettings,
                         ip: str | None) -> None:
    """A wrong password, already counted by :func:`reserve_attempt` as the ``count``-th in the
    window: audited. When the window holds ``lockout_attempts`` attempts, the account locks.
    Attempts still being checked count as wrong until shown right, so with a right password
    among attempts made side by side the account may lock a little early, never late."""
    now = utcnow()
    until = now + timedelta(seconds=lockout.lockout_seconds)
    async with db.write() as session:
        audit.record(session, user, "login_failed", "user", user.id, ip=ip,
                     detail={"failed_logins": count})
        locked = (await session.execute(
            update(User).where(User.id == user.id,
                               User.failed_logins >= lockout.lockout_attempts)
            .values(locked_until=until, failed_logins=0).returning(User.id))).scalar_one_or_none()
        if locked is not None:
            audit.record(session, user, "account_locked", "user", user.id, ip=ip,
                         detail={"failed_logins": lockout.lockout_attempts,
                                 "locked_until": until.isoformat()})
