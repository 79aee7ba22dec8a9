"""Login, logout, the current user, choosing one's password, and one's own sessions."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, StringConstraints
from sqlalchemy import ColumnElement, select, update

from yilian.server.core import audit, keys
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.auth import (
    attempt_failed,
    attempt_succeeded,
    bearer_token,
    check_credentials,
    hash_password,
    issue_token,
    reserve_attempt,
    revoke_token,
    revoke_user_tokens,
    token_digest,
    verify_password,
)
from yilian.server.core.db import utcnow
from yilian.server.core.errors import NotFound, Unauthorized, ValidationFailed
from yilian.server.core.models import AuthToken, User
from yilian.server.core.passwords import MAX_PASSWORD_CHARS, check_password
from yilian.server.core.schemas import Input, LoginIn, LoginOut, PreferencesIn, UserOut

router = ApiRouter()


def user_out(user: User) -> UserOut:
    """The public view of a user."""
    return UserOut(
        id=user.id, username=user.username, display_name=user.display_name, role=user.role,  # type: ignore[arg-type]
        institution_id=user.institution_id, department_id=user.department_id,
        specialties=list(user.specialties or []), title=user.title,
        locale=user.locale,  # type: ignore[arg-type]
    )


@router.route("POST", "/api/auth/login", summary="Log in; returns a bearer token (and "
              "must_change_password for a new or reset account). Too many wrong passwords "
              "lock the account for a while (429 account_locked)",
              tag="auth", body=LoginIn, response=LoginOut, auth=False)
async def login(req: ApiRequest) -> LoginOut:
    body: LoginIn = req.body
    limiter = req.request.app[keys.LOGIN_LIMITER]
    stamp = limiter.attempt(body.username, req.ip)  # counted before argon2 runs
    user = await check_credentials(req.db, body.username, body.password,
                                   lockout=req.settings.auth, ip=req.ip)
    if user is None:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    limiter.succeeded(body.username, req.ip, stamp)
    ttl = req.settings.auth.token_ttl_seconds
    token = await issue_token(req.db, user, ttl, address=req.ip,
                              user_agent=req.request.headers.get("User-Agent"))
    req.request.app[keys.AUDIT].record(user, "login", "user", user.id, ip=req.ip)
    return LoginOut(token=token, expires_at=utcnow() + timedelta(seconds=ttl), user=user_out(user),
                    must_change_password=user.must_change_password)


@router.route("POST", "/api/auth/logout", summary="Revoke the token used for this call",
              tag="auth", status=204)
async def logout(req: ApiRequest) -> None:
    token = bearer_token(req.request)
    assert token is not None  # authenticate() has seen it
    await revoke_token(req.db, token)
    # Forgotten by every process's token cache; the sockets it opened close.
    await req.request.app[keys.SESSIONS].revoked([token_digest(token)])


@router.route("GET", "/api/me", summary="The logged-in user", tag="auth", response=UserOut)
async def me(req: ApiRequest) -> UserOut:
    # Read afresh: the token cache may hold this user from before a change made through
    # another session (its language, say).
    async with req.db.read() as session:
        user = await session.get(User, req.user.id)
    return user_out(user or req.user)


@router.route("PUT", "/api/me/preferences", summary="Save the logged-in user's preferences "
              "(the language of the web client)", tag="auth", body=PreferencesIn,
              response=UserOut)
async def save_preferences(req: ApiRequest) -> UserOut:
    body: PreferencesIn = req.body
    async with req.db.write() as session:
        user = await session.get(User, req.user.id)
        if user is None:  # deleted between authentication and now
            raise Unauthorized("this account no longer exists")
        before = user.locale
        user.locale = body.locale
        audit.record(session, req.user, "update_preferences", "user", user.id, ip=req.ip,
                     detail={"locale": [before, body.locale]})
    # The token cache holds this user object for a few seconds: keep it current.
    req.user.locale = body.locale
    return user_out(user)


# --- choosing one's password ---------------------------------------------------------------

# Longer than the policy allows, so that the policy answers with its own code.
Password = Annotated[str, StringConstraints(min_length=1, max_length=4 * MAX_PASSWORD_CHARS)]


class PasswordIn(Input):
    old_password: Password
    new_password: Password


@router.route("POST", "/api/auth/password", summary="Change one's own password (a new or "
              "reset account must, before anything else). The new one follows the password "
              "policy; the user's other sessions end", tag="auth", body=PasswordIn,
              response=UserOut)
async def change_password(req: ApiRequest) -> UserOut:
    body: PasswordIn = req.body
    auth = req.settings.auth
    async with req.db.read() as session:
        user = await session.get(User, req.user.id)
    if user is None:
        raise Unauthorized("this account no longer exists")
    # A stolen token must not become a way to guess the password: the attempt counts as a
    # login's does, before the password is looked at (and locks the account at the limit).
    count = await reserve_attempt(req.db, user.id, auth)
    if not await asyncio.to_thread(verify_password, user.password_hash, body.old_password):
        await attempt_failed(req.db, user, count, auth, req.ip)
        raise ValidationFailed("the current password is wrong", code="wrong_password",
                               details={"errors": [{"loc": ["body", "old_password"],
                                                    "msg": "wrong password",
                                                    "type": "wrong_password"}]})
    await attempt_succeeded(req.db, user.id)
    await asyncio.to_thread(check_password, body.new_password, username=user.username,
                            min_length=auth.password_min_length,
                            previous_hash=user.password_hash, field="new_password")
    new_hash = await asyncio.to_thread(hash_password, body.new_password)
    token = bearer_token(req.request)
    current = token_digest(token) if token else None
    async with req.db.write() as session:
        row = await session.get(User, user.id)
        if row is None:
            raise Unauthorized("this account no longer exists")
        was_required = row.must_change_password
        row.password_hash, row.must_change_password = new_hash, False
        row.password_changed_at, row.failed_logins = utcnow(), 0
        ended = await revoke_user_tokens(session, row.id, keep=current)
        audit.record(session, req.user, "change_password", "user", row.id, ip=req.ip,
                     detail={"required": was_required, "sessions_ended": len(ended)})
    hub = req.request.app[keys.SESSIONS]
    await hub.revoked(ended)
    if current is not None:
        await hub.changed([current])  # the cached copy still says "must change"
    return user_out(row)


# --- one's own sessions ----------------------------------------------------------------------


class SessionOut(BaseModel):
    id: int
    created_at: datetime
    last_seen_at: datetime | None
    expires_at: datetime
    client_address: str | None
    user_agent: str | None
    #: A short name of the browser and system, e.g. "Chrome 131 · Windows".
    browser: str | None
    current: bool


class EndedOut(BaseModel):
    ended: int


_BROWSERS = (("MicroMessenger", "WeChat"), ("Edg", "Edge"), ("OPR", "Opera"),
             ("HeadlessChrome", "Chrome"),
             ("Firefox", "Firefox"), ("Chrome", "Chrome"), ("Chromium", "Chromium"),
             ("Version", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))


def browser_name(user_agent: str | None) -> str | None:
    """A short, readable name for a User-Agent header; None when nothing is recognised."""
    if not user_agent:
        return None
    name = None
    for token, label in _BROWSERS:
        found = re.search(rf"\b{token}/(\d+)", user_agent)
        if found:
            name = f"{label} {found.group(1)}"
            break
    system = next((label for token, label in _SYSTEMS if token in user_agent), None)
    parts = [p for p in (name, system) if p]
    return " · ".join(parts) if parts else user_agent[:40]


def _live_tokens(user_id: int) -> tuple[ColumnElement[bool], ...]:
    return (AuthToken.user_id == user_id, AuthToken.revoked_at.is_(None),
            AuthToken.expires_at > utcnow())


@router.route("GET", "/api/auth/sessions", summary="The logged-in user's live sessions (when "
              "each began and was last used, from which address and browser; the current one "
              "marked)", tag="auth", response=list[SessionOut])
async def list_sessions(req: ApiRequest) -> list[SessionOut]:
    token = bearer_token(req.request)
    current = token_digest(token) if token else None
    hub = req.request.app[keys.SESSIONS]
    async with req.db.read() as session:
        rows = (await session.execute(select(AuthToken).where(*_live_tokens(req.user.id))
                                      .order_by(AuthToken.created_at.desc()))).scalars().all()
    out = []
    for row in rows:
        seen = max((t for t in (row.last_seen_at, hub.pending(row.token_hash)) if t),
                   default=None)
        out.append(SessionOut(id=row.id, created_at=row.created_at, last_seen_at=seen,
                              expires_at=row.expires_at, client_address=row.client_address,
                              user_agent=row.user_agent, browser=browser_name(row.user_agent),
                              current=row.token_hash == current))
    return out


@router.route("DELETE", "/api/auth/sessions/{id}", summary="End one of one's own sessions "
              "(its sockets close at once)", tag="auth", status=204)
async def end_session(req: ApiRequest) -> None:
    session_id = req.path_id()
    async with req.db.write() as session:
        digest = (await session.execute(
            select(AuthToken.token_hash).where(AuthToken.id == session_id,
                                               *_live_tokens(req.user.id)))).scalar()
        if digest is None:
            raise NotFound(f"no such session: {session_id}")
        await session.execute(update(AuthToken).where(AuthToken.id == session_id)
                              .values(revoked_at=utcnow()))
        audit.record(session, req.user, "end_session", "session", session_id, ip=req.ip)
    await req.request.app[keys.SESSIONS].revoked([digest])


@router.route("DELETE", "/api/auth/sessions", summary="End all of one's sessions but the "
              "current one", tag="auth", response=EndedOut)
async def end_other_sessions(req: ApiRequest) -> EndedOut:
    token = bearer_token(req.request)
    async with req.db.write() as session:
        ended = await revoke_user_tokens(session, req.user.id,
                                         keep=token_digest(token) if token else None)
        audit.record(session, req.user, "end_other_sessions", "session", None, ip=req.ip,
                     detail={"ended": len(ended)})
    await req.request.app[keys.SESSIONS].revoked(ended)
    return EndedOut(ended=len(ended))
