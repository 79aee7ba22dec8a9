"""The real run of an import: checked again inside its write transaction, then written in one
transaction with a bulk insert per table (institutions level by level, so each parent's id is
known before its branches), audited, and answered with each new user's initial password."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.admin.imports import codes
from yilian.server.clinic.admin.imports.check import Plan, check
from yilian.server.clinic.admin.imports.reader import Upload
from yilian.server.clinic.admin.permissions import require_admin
from yilian.server.clinic.admin.rules import RANK
from yilian.server.clinic.admin.schemas import ImportReport, ImportResult
from yilian.server.core import accounts, audit
from yilian.server.core.csvfile import to_csv
from yilian.server.core.db import Database, one_at_a_time, utcnow
from yilian.server.core.errors import ValidationFailed
from yilian.server.core.models import AllianceMember, Department, Institution, User

#: Names listed in the audit entry of one import (the counts are always there).
AUDIT_NAMES = 20_000


async def dry_run(db: Database, user: User, upload: Upload) -> ImportReport:
    """Check everything, write nothing."""
    require_admin(user, "import institutions and users")
    async with db.read() as session:
        plan = await check(session, upload, user)
    return ImportReport(ok=not upload.problems, counts=plan.counts(), errors=upload.problems)


def _refuse(upload: Upload, plan: Plan) -> ValidationFailed:
    return ValidationFailed(
        f"the import has {len(upload.problems)} problems; nothing was imported",
        code="import_invalid",
        details=ImportReport(ok=False, counts=plan.counts(),
                             errors=upload.problems).model_dump(mode="json"))


async def run(db: Database, user: User, upload: Upload, ip: str | None) -> ImportResult:
    """Import everything or nothing (422 ``import_invalid`` listing every problem)."""
    require_admin(user, "import institutions and users")
    async with db.read() as session:
        plan = await check(session, upload, user)
    if upload.problems:
        raise _refuse(upload, plan)
    # Hashing takes seconds: done before the write transaction, which it would hold up.
    passwords = [codes.new_code() for _ in plan.users]
    hashes = await codes.hash_codes(passwords)
    async with db.write() as session:
        # Checked again where it is written: the directory may have changed meanwhile (and
        # names taken by another writer wait until this one has committed).
        await one_at_a_time(session, "institution-name", "department-name")
        upload.problems.clear()
        plan = await check(session, upload, user)
        if upload.problems:
            raise _refuse(upload, plan)
        names, created = await _write(session, plan, hashes)
        accounts.audit_created(session, user, created, ip=ip)
        counts = plan.counts()
        audit.record(session, user, "import", "directory", None, ip=ip, detail={
            "after": {**counts.model_dump(),
                      "institutions": [i.name for i in plan.institutions][:AUDIT_NAMES],
                      "usernames": [u.username for u in plan.users][:AUDIT_NAMES]}})
    return ImportResult(counts=counts, passwords_csv=_passwords_csv(plan, passwords, names))


async def _write(session: AsyncSession, plan: Plan, hashes: list[str]
                 ) -> tuple[list[str], list[User]]:
    """Insert the plan; returns each new user's institution name for the password sheet, and
    the new accounts."""
    ids: dict[str, int] = {}

    def ref(r: int | str) -> int:
        return r if isinstance(r, int) else ids[r]

    for level in sorted({i.level for i in plan.institutions}, key=RANK.__getitem__):
        batch = [i for i in plan.institutions if i.level == level]
        rows = [{"name": i.name, "local_name": i.local_name, "level": i.level,
                 "parent_id": None if i.parent is None else ref(i.parent)} for i in batch]
        result = await session.execute(
            insert(Institution).returning(Institution.id, Institution.name), rows)
        ids.update({name.lower(): iid for iid, name in result})
    members = [{"alliance_id": i.alliance_id, "institution_id": ids[i.name.lower()]}
               for i in plan.institutions if i.alliance_id is not None]
    if members:
        await session.execute(insert(AllianceMember), members)
    if plan.departments:
        await session.execute(insert(Department), [
            {"institution_id": ref(d.institution), "name": d.name, "specialty": d.specialty}
            for d in plan.departments])
    wanted = {ref(u.institution) for u in plan.users}
    dept_ids = {(iid, name.casefold()): did for did, iid, name in (await session.execute(
        select(Department.id, Department.institution_id, Department.name).where(
            Department.institution_id.in_(wanted)))).all()} if wanted else {}
    now = utcnow()
    created: list[User] = []
    if plan.users:
        created = list(await session.scalars(insert(User).returning(User), [
            {"username": u.username, "display_name": u.display_name, "password_hash": h,
             "role": u.role, "institution_id": ref(u.institution),
             "department_id": dept_ids[(ref(u.institution), u.department.casefold())]
             if u.department else None,
             "specialties": u.specialties, "title": u.title, "active": True,
             "created_at": now, "must_change_password": True, "failed_logins": 0}
            for u, h in zip(plan.users, hashes, strict=True)]))
    names: dict[int, str] = dict((await session.execute(select(Institution.id, Institution.name).where(
        Institution.id.in_(wanted)))).all()) if wanted else {}
    return [names.get(ref(u.institution), "") for u in plan.users], created


def _passwords_csv(plan: Plan, passwords: list[str], institutions: list[str]) -> str:
    """username, name, institution, initial password, as a CSV file for Excel (with its byte
    order mark; a name such as "=1+1" cannot run as a formula)."""
    return to_csv(["username", "display_name", "institution", "initial_password"], (
        [u.username, u.display_name, inst, p]
        for u, inst, p in zip(plan.users, institutions, passwords, strict=True))).decode("utf-8")
