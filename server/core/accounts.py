"""User accounts: who may manage whom, and creating and changing accounts with every rule
checked (the API, the ``yilian admin`` command and the directory import all come here).

An administrator manages every account; a coordinator the accounts of the institutions that
share an alliance with their own, never an administrator, and never raising anyone above
coordinator. Every change is audited with its before and after (never a password or hash).

For many accounts at once (an import), load a :class:`Directory` once and pass it to each
:func:`check_new_user` / :func:`create_user`: the checks then read no database row per user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core import audit
from yilian.server.core.access import alliance_partner_ids
from yilian.server.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
    YilianError,
)
from yilian.server.core.models import ROLES, Department, Institution, User

T = TypeVar("T")
#: Lower-case letters, digits, ``.``, ``_`` and ``-``; 3 to 64 characters, starting with a
#: letter or digit (names people type on a phone, and that fit a CSV without quoting).
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
SPECIALTY = re.compile(r"^[a-z][a-z_]{1,47}$")
#: Roles by rank: a coordinator assigns roles up to its own.
RANK = {role: i for i, role in enumerate(ROLES)}
MANAGERS = ("coordinator", "admin")
#: Stored instead of a hash for an account that has no password yet (an import): it never
#: verifies, so the account logs in only after a reset gives it a temporary password.
NO_PASSWORD = "!no-password"
#: The fields of an account its audit entries show before and after.
AUDITED = ("username", "display_name", "role", "institution_id", "department_id",
           "specialties", "title", "active", "locale", "must_change_password")


@dataclass
class NewUser:
    """An account to create. ``department`` is a department's id or its name within the
    institution."""

    username: str
    display_name: str
    role: str
    institution_id: int
    specialties: list[str] = field(default_factory=list)
    title: str | None = None
    department: int | str | None = None
    locale: str | None = None


@dataclass
class Directory:
    """What the account rules need to know, read once: institutions, departments, taken
    usernames, and which institutions the acting user manages (None: all)."""

    institutions: set[int]
    departments: dict[int, int]  # department id -> institution id
    department_names: dict[tuple[int, str], int]  # (institution id, name) -> department id
    usernames: set[str]
    scope: set[int] | None

    @classmethod
    async def load(cls, session: AsyncSession, actor: User | None,
                   usernames: Iterable[str] | None = None) -> Directory:
        """Read the directory for ``actor`` (None: the command line, unrestricted); with
        ``usernames``, only which of those are taken (not every account's name)."""
        institutions = set((await session.execute(select(Institution.id))).scalars())
        departments: dict[int, int] = {}
        names: dict[tuple[int, str], int] = {}
        for dep_id, inst_id, name in await session.execute(
                select(Department.id, Department.institution_id, Department.name)):
            departments[dep_id] = inst_id
            names[(inst_id, name.casefold())] = dep_id
        stmt = select(User.username)
        if usernames is not None:
            stmt = stmt.where(User.username.in_({normalize_username(u) for u in usernames}))
        taken = set((await session.execute(stmt)).scalars())
        return cls(institutions, departments, names, taken,
                   await managed_institutions(session, actor) if actor is not None else None)


def normalize_username(username: str) -> str:
    """Usernames are compared and stored in lower case, without surrounding spaces."""
    return username.strip().lower()


async def managed_institutions(session: AsyncSession, actor: User) -> set[int] | None:
    """The institutions whose accounts ``actor`` manages: None for an administrator (all),
    the alliance partners of a coordinator's institution; 403 for anyone else."""
    if actor.role == "admin":
        return None
    if actor.role == "coordinator":
        return await alliance_partner_ids(session, actor.institution_id)
    raise Forbidden(f"a {actor.role} may not manage accounts",
                    details={"role": actor.role, "allowed": list(MANAGERS)})


def invalid(code: str, loc: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, details={
        "errors": [{"loc": ["body", loc], "msg": message, "type": code}]})


def check_role(actor: User | None, role: str) -> None:
    """Raise unless ``actor`` may give an account ``role``."""
    if role not in RANK:
        raise invalid("invalid_role", "role", f"role is one of {', '.join(ROLES)}")
    # Only an administrator makes (or promotes to) coordinator or admin: a coordinator who
    # could make a coordinator at a partner institution would reach that partner's other
    # alliances through the new account.
    if actor is not None and actor.role != "admin" and RANK[role] >= RANK[actor.role]:
        raise Forbidden(f"a {actor.role} may not make a {role}", code="role_not_allowed",
                        details={"role": role})


def check_institution(directory: Directory, institution_id: int) -> None:
    """Raise unless the institution exists and is within the acting user's reach."""
    if institution_id not in directory.institutions:
        raise invalid("unknown_institution", "institution_id",
                       f"there is no institution {institution_id}")
    if directory.scope is not None and institution_id not in directory.scope:
        raise Forbidden("that institution is not in your alliance", code="outside_alliance",
                        details={"institution_id": institution_id})


def resolve_department(directory: Directory, institution_id: int,
                       department: int | str | None) -> int | None:
    """The department's id, which must belong to the institution; None for none."""
    if department is None or department == "":
        return None
    if isinstance(department, int):
        found: int | None = department if directory.departments.get(department) == \
            institution_id else None
    else:
        found = directory.department_names.get((institution_id, department.strip().casefold()))
    if found is None:
        raise invalid("unknown_department", "department",
                       f"institution {institution_id} has no department {department!r}")
    return found


def check_specialties(role: str, specialties: Iterable[str]) -> list[str]:
    """The specialties, each a lower-case code; a specialist has at least one."""
    codes = list(dict.fromkeys(specialties))
    bad = [s for s in codes if not SPECIALTY.fullmatch(s)]
    if bad:
        raise invalid("invalid_specialty", "specialties",
                       f"a specialty is a lower-case code such as cardiology: {bad[0][:40]!r}")
    if role == "specialist" and not codes:
        raise invalid("specialties_required", "specialties",
                       "a specialist needs at least one specialty")
    return codes


def check_username(directory: Directory, username: str) -> str:
    """The username normalised; raises unless it is well formed and free."""
    username = normalize_username(username)
    if not USERNAME.fullmatch(username):
        raise invalid("invalid_username", "username", "a username is 3 to 64 lower-case "
                       "letters, digits, '.', '_' or '-', starting with a letter or digit")
    if username in directory.usernames:
        raise Conflict(f"the username {username!r} is taken", code="username_taken",
                       details={"username": username})
    return username


def check_display_name(display_name: str) -> str:
    display_name = display_name.strip()
    if not display_name or len(display_name) > 120:
        raise invalid("invalid_display_name", "display_name",
                       "a display name has 1 to 120 characters")
    return display_name


def check_title(title: str | None) -> str | None:
    title = (title or "").strip() or None
    if title is not None and len(title) > 64:
        raise invalid("invalid_title", "title", "a title has at most 64 characters")
    return title


def user_problems(directory: Directory, actor: User | None, new: NewUser
                  ) -> tuple[NewUser | None, list[tuple[str, YilianError]]]:
    """Every rule ``new`` breaks, each as (field of :class:`NewUser`, its 4xx error), in the
    order :func:`check_new_user` checks them (the department only once the institution is
    right); with none, ``new`` normalised. An import reports them all, row by row."""
    problems: list[tuple[str, YilianError]] = []

    def attempt(name: str, check: Callable[[], T]) -> T | None:
        try:
            return check()
        except YilianError as exc:
            problems.append((name, exc))
            return None

    username = attempt("username", lambda: check_username(directory, new.username))
    display_name = attempt("display_name", lambda: check_display_name(new.display_name))
    attempt("role", lambda: check_role(actor, new.role))
    before = len(problems)
    attempt("institution_id", lambda: check_institution(directory, new.institution_id))
    department = None if len(problems) > before else attempt(
        "department", lambda: resolve_department(directory, new.institution_id, new.department))
    title = attempt("title", lambda: check_title(new.title))
    specialties = attempt("specialties", lambda: check_specialties(new.role, new.specialties))
    if problems or username is None or display_name is None or specialties is None:
        return None, problems
    return NewUser(username, display_name, new.role, new.institution_id, specialties, title,
                   department, new.locale), []


def check_new_user(directory: Directory, actor: User | None, new: NewUser) -> NewUser:
    """Raise the first rule ``new`` breaks (4xx with its code); return it normalised."""
    checked, problems = user_problems(directory, actor, new)
    if problems:
        raise problems[0][1]
    assert checked is not None
    return checked


def snapshot(user: User) -> dict[str, Any]:
    """The audited fields of an account (no secrets)."""
    return {name: getattr(user, name) for name in AUDITED}


async def create_user(session: AsyncSession, directory: Directory, actor: User | None,
                      new: NewUser, password_hash: str | None, *,
                      must_change_password: bool = True, ip: str | None = None,
                      flush: bool = True) -> User:
    """Check ``new`` and add the account to ``session``; ``password_hash`` None: no password
    until a reset. With ``flush`` (one account) it is flushed and audited as ``create_user``
    here; an import passes ``flush=False``, flushes many at once and then calls
    :func:`audit_created` with them."""
    checked = check_new_user(directory, actor, new)
    user = User(
        username=checked.username, display_name=checked.display_name, role=checked.role,
        institution_id=checked.institution_id, department_id=checked.department,
        specialties=checked.specialties, title=checked.title, active=True,
        locale=checked.locale, password_hash=password_hash or NO_PASSWORD,
        must_change_password=must_change_password, failed_logins=0)
    session.add(user)
    directory.usernames.add(checked.username)
    if flush:
        await session.flush()
        audit_created(session, actor, [user], ip)
    return user


def audit_created(session: AsyncSession, actor: User | None, users: Iterable[User],
                  ip: str | None = None) -> None:
    """Audit each new account (flushed: it has its id) as ``create_user`` with its fields."""
    for user in users:
        audit.record(session, actor, "create_user", "user", user.id, ip=ip,
                     detail={"after": snapshot(user)})


async def managed_user(session: AsyncSession, actor: User, user_id: int,
                       *, for_update: bool = False) -> User:
    """The account ``user_id`` if ``actor`` manages it (404 otherwise, so a coordinator
    learns nothing of other alliances' accounts); a coordinator may look at an
    administrator's account in their alliance but not change it."""
    scope = await managed_institutions(session, actor)
    user = await session.get(User, user_id, with_for_update=for_update or None)
    if user is None or (scope is not None and user.institution_id not in scope):
        raise NotFound(f"no such user: {user_id}")
    return user


def require_may_change(actor: User, user: User) -> None:
    """Raise unless ``actor`` may change ``user``: a coordinator changes the accounts of the
    roles below theirs (and their own, within what one may change of oneself), never another
    coordinator's or an admin's (a reset would hand them that account and its reach)."""
    if user.id == actor.id:
        return
    if actor.role != "admin" and RANK[user.role] >= RANK[actor.role]:
        raise Forbidden(f"a {actor.role} may not change a {user.role}'s account",
                        code="role_not_allowed", details={"role": user.role})


async def count_active_admins(session: AsyncSession) -> int:
    """How many active administrators there are (the last one may not be removed)."""
    return int((await session.execute(
        select(func.count()).select_from(User).where(User.role == "admin",
                                                     User.active.is_(True)))).scalar_one())
