"""Institutions and their departments: create, change, and remove a department nobody uses.
Every change is audited with what it was before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.admin import rules
from yilian.server.clinic.admin.permissions import require_admin, require_keeper
from yilian.server.clinic.admin.schemas import (
    DepartmentAdminOut,
    DepartmentIn,
    DepartmentPatch,
    InstitutionIn,
    InstitutionPatch,
)
from yilian.server.clinic.models import OnCallShift, Referral
from yilian.server.clinic.referrals.oncall import staff_of
from yilian.server.clinic.schemas import DepartmentOut, InstitutionOut
from yilian.server.core import audit
from yilian.server.core.db import one_at_a_time
from yilian.server.core.errors import Conflict, NotFound, ValidationFailed
from yilian.server.core.models import Department, Institution, User


def institution_out(i: Institution, departments: list[Department]) -> InstitutionOut:
    return InstitutionOut(
        id=i.id, name=i.name, local_name=i.local_name, level=i.level,  # type: ignore[arg-type]
        parent_id=i.parent_id,
        departments=[DepartmentOut(id=d.id, name=d.name, specialty=d.specialty,
                                   head_id=d.head_id) for d in departments])


def _snapshot(i: Institution) -> dict[str, Any]:
    return {"name": i.name, "local_name": i.local_name, "level": i.level,
            "parent_id": i.parent_id}


async def _institution(session: AsyncSession, institution_id: int, field: str | None = None
                       ) -> Institution:
    found = await session.get(Institution, institution_id)
    if found is None:
        if field:
            raise ValidationFailed(f"no institution {institution_id}",
                                   code="unknown_institution", details={"field": field})
        raise NotFound(f"no institution {institution_id}")
    return found


async def _name_free(session: AsyncSession, name: str, institution_id: int | None = None) -> None:
    await one_at_a_time(session, "institution-name")  # held to commit: no twin meanwhile
    stmt = select(Institution.id).where(func.lower(Institution.name) == name.lower())
    other = await session.scalar(stmt)
    if other is not None and other != institution_id:
        raise Conflict(f"an institution is already called {name!r}", code="name_taken",
                       details={"field": "name", "institution_id": other})


async def _departments(session: AsyncSession, institution_id: int) -> list[Department]:
    rows = await session.scalars(select(Department).where(
        Department.institution_id == institution_id).order_by(Department.id))
    return list(rows)


async def create_institution(session: AsyncSession, user: User, body: InstitutionIn,
                             ip: str | None) -> InstitutionOut:
    """A new institution (administrators), under a parent of a higher level."""
    require_admin(user, "create institutions")
    await _name_free(session, body.name)
    if body.parent_id is not None:
        parent = await _institution(session, body.parent_id, "parent_id")
        rules.check_parent_level(body.level, parent.level)
    inst = Institution(name=body.name, local_name=body.local_name, level=body.level,
                       parent_id=body.parent_id)
    session.add(inst)
    await session.flush()
    audit.record(session, user, "create", "institution", inst.id, ip=ip,
                 detail={"after": _snapshot(inst)})
    return institution_out(inst, [])


async def change_institution(session: AsyncSession, user: User, institution_id: int,
                             body: InstitutionPatch, ip: str | None) -> InstitutionOut:
    """Rename, re-level or re-parent an institution (an administrator, or a coordinator of
    its alliance for an institution and a parent they both keep)."""
    inst = await _institution(session, institution_id)
    await require_keeper(session, user, inst.id, "change this institution")
    given = body.model_fields_set
    before = _snapshot(inst)
    if "name" in given:
        if body.name is None:
            raise ValidationFailed("an institution keeps a name", details={"field": "name"})
        await _name_free(session, body.name, inst.id)
        inst.name = body.name
    if "local_name" in given:
        inst.local_name = body.local_name
    level = body.level if "level" in given and body.level is not None else inst.level
    if "level" in given and body.level is None:
        raise ValidationFailed("an institution keeps a level", details={"field": "level"})
    parent_id = body.parent_id if "parent_id" in given else inst.parent_id
    if parent_id is not None:
        parent = await _institution(session, parent_id, "parent_id")
        if parent_id != inst.parent_id:
            await require_keeper(session, user, parent_id, "place an institution under this one")
        parents: dict[int, int | None] = dict((await session.execute(
            select(Institution.id, Institution.parent_id))).all())
        rules.check_no_cycle(inst.id, parent_id, parents.get)
        rules.check_parent_level(level, parent.level)
    children = list(await session.scalars(select(Institution.level).where(
        Institution.parent_id == inst.id)))
    rules.check_children_levels(level, children)
    inst.level, inst.parent_id = level, parent_id
    await session.flush()
    after = _snapshot(inst)
    if after != before:
        audit.record(session, user, "update", "institution", inst.id, ip=ip,
                     detail={"before": before, "after": after})
    return institution_out(inst, await _departments(session, inst.id))


# --- departments ---------------------------------------------------------------------------


async def _in_use(session: AsyncSession, department_id: int) -> bool:
    for column in (User.department_id, OnCallShift.department_id, Referral.department_id):
        if await session.scalar(select(exists().where(column == department_id))):
            return True
    return False


async def department_out(session: AsyncSession, d: Department) -> DepartmentAdminOut:
    return DepartmentAdminOut(id=d.id, institution_id=d.institution_id, name=d.name,
                              specialty=d.specialty, head_id=d.head_id,
                              in_use=await _in_use(session, d.id))


def _dept_snapshot(d: Department) -> dict[str, Any]:
    return {"institution_id": d.institution_id, "name": d.name, "specialty": d.specialty,
            "head_id": d.head_id}


async def _department_name_free(session: AsyncSession, institution_id: int, name: str,
                                department_id: int | None = None) -> None:
    await one_at_a_time(session, "department-name")
    other = await session.scalar(select(Department.id).where(
        Department.institution_id == institution_id,
        func.lower(Department.name) == name.lower()))
    if other is not None and other != department_id:
        raise Conflict(f"the institution already has a department {name!r}", code="name_taken",
                       details={"field": "name", "department_id": other})


async def list_departments(session: AsyncSession, institution_id: int
                           ) -> list[DepartmentAdminOut]:
    """An institution's departments, with whether each is in use."""
    await _institution(session, institution_id)
    return [await department_out(session, d) for d in await _departments(session,
                                                                         institution_id)]


async def create_department(session: AsyncSession, user: User, institution_id: int,
                            body: DepartmentIn, ip: str | None) -> DepartmentAdminOut:
    """A new department of an institution the caller keeps."""
    inst = await _institution(session, institution_id)
    await require_keeper(session, user, inst.id, "add departments to this institution")
    await _department_name_free(session, inst.id, body.name)
    dept = Department(institution_id=inst.id, name=body.name, specialty=body.specialty)
    session.add(dept)
    await session.flush()
    audit.record(session, user, "create", "department", dept.id, ip=ip,
                 detail={"after": _dept_snapshot(dept)})
    return DepartmentAdminOut(id=dept.id, institution_id=inst.id, name=dept.name,
                              specialty=dept.specialty, head_id=None)


async def _department(session: AsyncSession, department_id: int) -> Department:
    dept = await session.get(Department, department_id)
    if dept is None:
        raise NotFound(f"no department {department_id}")
    return dept


async def change_department(session: AsyncSession, user: User, department_id: int,
                            body: DepartmentPatch, ip: str | None) -> DepartmentAdminOut:
    """Rename a department, change its specialty or its head (clinical staff of its
    institution)."""
    dept = await _department(session, department_id)
    await require_keeper(session, user, dept.institution_id, "change this department")
    given = body.model_fields_set
    before = _dept_snapshot(dept)
    if "name" in given:
        if body.name is None:
            raise ValidationFailed("a department keeps a name", details={"field": "name"})
        await _department_name_free(session, dept.institution_id, body.name, dept.id)
        dept.name = body.name
    if "specialty" in given:
        dept.specialty = body.specialty
    if "head_id" in given:
        dept.head_id = (await staff_of(session, body.head_id, dept, "head_id")).id \
            if body.head_id is not None else None
    await session.flush()
    after = _dept_snapshot(dept)
    if after != before:
        audit.record(session, user, "update", "department", dept.id, ip=ip,
                     detail={"before": before, "after": after})
    return await department_out(session, dept)


async def remove_department(session: AsyncSession, user: User, department_id: int,
                            ip: str | None) -> None:
    """Remove a department that no staff, roster or referral refers to (409 otherwise)."""
    dept = await _department(session, department_id)
    await require_keeper(session, user, dept.institution_id, "remove this department")
    if await _in_use(session, dept.id):
        raise Conflict("the department has staff, on-call shifts or referrals: rename it "
                       "instead", code="department_in_use", details={"department_id": dept.id})
    audit.record(session, user, "delete", "department", dept.id, ip=ip,
                 detail={"before": _dept_snapshot(dept)})
    await session.delete(dept)
    try:
        await session.flush()
    except IntegrityError:  # referred to by a row that appeared meanwhile
        raise Conflict("the department is in use", code="department_in_use",
                       details={"department_id": department_id}) from None
