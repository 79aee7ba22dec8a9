"""Login, logout and the current user."""

from __future__ import annotations

from datetime import timedelta

from yilian.server.core import audit, keys
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.auth import bearer_token, check_credentials, issue_token, revoke_token
from yilian.server.core.db import utcnow
from yilian.server.core.errors import Unauthorized
from yilian.server.core.models import User
from yilian.server.core.schemas import LoginIn, LoginOut, PreferencesIn, UserOut

router = ApiRouter()


def user_out(user: User) -> UserOut:
    """The public view of a user."""
    return UserOut(
        id=user.id, username=user.username, display_name=user.display_name, role=user.role,  # type: ignore[arg-type]
        institution_id=user.institution_id, department_id=user.department_id,
        specialties=list(user.specialties or []), title=user.title,
        locale=user.locale,  # type: ignore[arg-type]
    )


@router.route("POST", "/api/auth/login", summary="Log in; returns a bearer token",
              tag="auth", body=LoginIn, response=LoginOut, auth=False)
async def login(req: ApiRequest) -> LoginOut:
    body: LoginIn = req.body
    limiter = req.request.app[keys.LOGIN_LIMITER]
    limiter.check(body.username, req.ip)
    user = await check_credentials(req.db, body.username, body.password)
    if user is None:
        limiter.failed(body.username, req.ip)
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    limiter.succeeded(body.username)
    ttl = req.settings.auth.token_ttl_seconds
    token = await issue_token(req.db, user, ttl)
    return LoginOut(token=token, expires_at=utcnow() + timedelta(seconds=ttl), user=user_out(user))


@router.route("POST", "/api/auth/logout", summary="Revoke the token used for this call",
              tag="auth", status=204)
async def logout(req: ApiRequest) -> None:
    token = bearer_token(req.request)
    assert token is not None  # authenticate() has seen it
    await revoke_token(req.db, token, req.request.app[keys.TOKEN_CACHE])


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
