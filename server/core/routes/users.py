"""User accounts over HTTP (api.md "Administration"): an administrator manages every account,
a coordinator those of their alliance's institutions (see ``core.accounts``)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from yilian.server.core import accounts, audit, keys
from yilian.server.core.accounts import Directory, NewUser
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.auth import hash_password, revoke_user_tokens, user_token_digests
from yilian.server.core.db import one_at_a_time, utcnow
from yilian.server.core.errors import Conflict
from yilian.server.core.models import User
from yilian.server.core.passwords import MAX_PASSWORD_CHARS, check_password
from yilian.server.core.schemas import Id, Input, Int, Locale, Role, Specialty

router = ApiRouter()
TAG = "users"

Username = Annotated[str, StringConstraints(min_length=1, max_length=64)]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=120)]
Title = Annotated[str, StringConstraints(max_length=64)]
# Longer than the policy allows, so that the policy answers with its own code.
Password = Annotated[str, StringConstraints(min_length=1, max_length=4 * MAX_PASSWORD_CHARS)]
#: A department by id, or by its name within the institution.
DepartmentRef = Annotated[int, Field(ge=1, le=2**31 - 1)] | Annotated[
    str, StringConstraints(min_length=1, max_length=120)]


class UserIn(Input):
    username: Username
    display_name: DisplayName
    role: Role
    institution_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    #: A temporary password: the user must choose their own at first login.
    password: Password
    specialties: Annotated[list[Specialty], Field(max_length=20)] = []
    title: Title | None = None
    department: DepartmentRef | None = None
    locale: Locale | None = None


class UserPatch(Input):
    display_name: DisplayName | None = None
    role: Role | None = None
    institution_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    specialties: Annotated[list[Specialty], Field(max_length=20)] | None = None
    title: Title | None = None
    department: DepartmentRef | None = None
    active: bool | None = None
    locale: Locale | None = None
    #: true: a temporary password is made and returned once; the user must change it.
    reset_password: bool | None = None
    #: A temporary password chosen by the administrator; the user must change it.
    password: Password | None = None
    #: true: end a lockout after too many wrong passwords.
    unlock: bool | None = None


class UserAdminOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    institution_id: int
    department_id: int | None
    specialties: list[str]
    title: str | None
    locale: Locale | None
    active: bool
    must_change_password: bool
    locked_until: datetime | None
    created_at: datetime
    password_changed_at: datetime | None
    #: Only in the answer to a reset: the temporary password, shown once.
    temporary_password: str | None = None


class UserQuery(BaseModel):
    institution_id: Id | None = None
    role: Role | None = None
    active: bool | None = None
    #: Part of the username or display name.
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    limit: Annotated[Int, Field(ge=1, le=200)] = 50
    offset: Annotated[Int, Field(ge=0, le=1_000_000)] = 0


def admin_out(user: User, temporary: str | None = None) -> UserAdminOut:
    """The administrator's view of an account (never its hash)."""
    locked = user.locked_until if user.locked_until and user.locked_until > utcnow() else None
    return UserAdminOut(
        id=user.id, username=user.username, display_name=user.display_name,
        role=user.role,  # type: ignore[arg-type]
        institution_id=user.institution_id, department_id=user.department_id,
        specialties=list(user.specialties or []), title=user.title,
        locale=user.locale,  # type: ignore[arg-type]
        active=user.active, must_change_password=user.must_change_password,
        locked_until=locked, created_at=user.created_at,
        password_changed_at=user.password_changed_at, temporary_password=temporary)


def temporary_password() -> str:
    """A temporary password that meets the policy: 12 easily read characters in 3 groups."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


async def _checked_hash(password: str, username: str, min_length: int) -> str:
    await asyncio.to_thread(check_password, password, username=username,
                            min_length=min_length)
    return await asyncio.to_thread(hash_password, password)


@router.route("POST", "/api/users", summary="Create an account (admin anywhere; a coordinator "
              "for the institutions of their alliance, roles up to coordinator); the user "
              "must choose their own password at first login", tag=TAG, body=UserIn,
              response=UserAdminOut, status=201)
async def create_user(req: ApiRequest) -> UserAdminOut:
    body: UserIn = req.body
    async with req.db.read() as session:  # refuse cheaply before hashing
        directory = await Directory.load(session, req.user, [body.username])
    new = NewUser(body.username, body.display_name, body.role, body.institution_id,
                  body.specialties, body.title, body.department, body.locale)
    checked = accounts.check_new_user(directory, req.user, new)
    password_hash = await _checked_hash(body.password, checked.username,
                                        req.settings.auth.password_min_length)
    try:
        async with req.db.write() as session:
            directory = await Directory.load(session, req.user, [body.username])
            user = await accounts.create_user(session, directory, req.user, new, password_hash,
                                              ip=req.ip)
    except IntegrityError:  # the same username, created a moment ago
        raise Conflict(f"the username {checked.username!r} is taken", code="username_taken",
                       details={"username": checked.username}) from None
    return admin_out(user)


@router.route("GET", "/api/users", summary="Accounts the caller manages, by institution, role, "
              "active and a search in name and username; paged by limit and offset", tag=TAG,
              query=UserQuery, response=list[UserAdminOut])
async def list_users(req: ApiRequest) -> list[UserAdminOut]:
    q: UserQuery = req.query
    async with req.db.read() as session:
        scope = await accounts.managed_institutions(session, req.user)
        stmt = select(User)
        if scope is not None:
            stmt = stmt.where(User.institution_id.in_(scope))
        if q.institution_id is not None:
            stmt = stmt.where(User.institution_id == q.institution_id)
        if q.role is not None:
            stmt = stmt.where(User.role == q.role)
        if q.active is not None:
            stmt = stmt.where(User.active.is_(q.active))
        if q.q:
            like = "%" + q.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            stmt = stmt.where(or_(User.username.like(like, escape="\\"),
                                  User.display_name.ilike(like, escape="\\")))
        rows = (await session.execute(stmt.order_by(User.username).limit(q.limit)
                                      .offset(q.offset))).scalars().all()
    return [admin_out(u) for u in rows]


@router.route("GET", "/api/users/{id}", summary="One account the caller manages", tag=TAG,
              response=UserAdminOut)
async def get_user(req: ApiRequest) -> UserAdminOut:
    async with req.db.read() as session:
        return admin_out(await accounts.managed_user(session, req.user, req.path_id()))


@router.route("PATCH", "/api/users/{id}", summary="Change an account: display name, role, "
              "institution, specialties, title, department, active (false ends every session "
              "and socket at once), locale, reset_password or a temporary password (the user "
              "must change it), unlock", tag=TAG, body=UserPatch, response=UserAdminOut)
async def update_user(req: ApiRequest) -> UserAdminOut:
    body: UserPatch = req.body
    given = {k for k in body.model_fields_set}
    user_id = req.path_id()
    temporary = temporary_password() if body.reset_password else body.password
    async with req.db.read() as session:
        target = await accounts.managed_user(session, req.user, user_id)
    new_hash = None
    if temporary is not None:
        new_hash = await _checked_hash(temporary, target.username,
                                       req.settings.auth.password_min_length)
    async with req.db.write() as session:
        user = await accounts.managed_user(session, req.user, user_id, for_update=True)
        ended = await _apply(session, req, user, body, given, new_hash)
        digests = await user_token_digests(session, user.id)
    hub = req.request.app[keys.SESSIONS]
    await hub.revoked(ended)
    await hub.changed(digests)
    return admin_out(user, temporary if body.reset_password else None)


async def _apply(session: Any, req: ApiRequest, user: User, body: UserPatch, given: set[str],
                 new_hash: str | None) -> list[str]:
    """Apply the patch to ``user`` with every rule; audit it; return the tokens it ended."""
    actor = req.user
    accounts.require_may_change(actor, user)
    directory = await Directory.load(session, actor, [])
    before = accounts.snapshot(user)
    own = user.id == actor.id
    for name in ("role", "active", "institution_id"):
        if name in given and own and getattr(body, name) != getattr(user, name):
            raise Conflict("you may not change your own role, institution or activation; "
                           "ask another administrator", code="own_account",
                           details={"field": name})
    for name in ("display_name", "role", "active", "institution_id"):
        if name in given and getattr(body, name) is None:
            raise accounts.invalid(f"invalid_{name}", name, f"{name} may not be null")
    if body.role is not None:
        accounts.check_role(actor, body.role)
    institution_id = body.institution_id or user.institution_id
    if body.institution_id is not None:
        accounts.check_institution(directory, body.institution_id)
    role = body.role or user.role
    if "department" in given or body.institution_id is not None:
        ref = body.department if "department" in given else user.department_id
        user.department_id = accounts.resolve_department(directory, institution_id, ref)
    specialties = body.specialties if body.specialties is not None else user.specialties
    user.specialties = accounts.check_specialties(role, specialties or [])
    leaves_admins = user.role == "admin" and user.active and (
        role != "admin" or body.active is False)
    if leaves_admins:
        await one_at_a_time(session, "active-admins")  # two admins demoting each other
    if leaves_admins and await accounts.count_active_admins(session) <= 1:
        raise Conflict("this is the last active administrator", code="last_admin")
    if body.display_name is not None:
        user.display_name = body.display_name.strip()
    if "title" in given:
        user.title = (body.title or "").strip() or None
    if "locale" in given:
        user.locale = body.locale
    user.role, user.institution_id = role, institution_id
    if body.active is not None:
        user.active = body.active
    unlocked = bool(body.unlock) and user.locked_until is not None
    if body.unlock:
        user.locked_until, user.failed_logins = None, 0
    if new_hash is not None:
        user.password_hash, user.must_change_password = new_hash, True
    ended: list[str] = []
    if new_hash is not None or body.active is False:
        ended = await revoke_user_tokens(session, user.id)
    after = accounts.snapshot(user)
    changed = {k for k in after if after[k] != before[k]}
    audit.record(session, actor, "update_user", "user", user.id, ip=req.ip, detail={
        "before": {k: before[k] for k in sorted(changed)},
        "after": {k: after[k] for k in sorted(changed)},
        "password_reset": new_hash is not None, "unlocked": unlocked,
        "sessions_ended": len(ended)})
    return ended
