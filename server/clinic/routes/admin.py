"""Administration over HTTP: what the caller may do, institutions and their departments,
alliances and their members (the rules are in ``clinic.admin``)."""

from __future__ import annotations

from yilian.server.clinic.admin import alliances, institutions, permissions
from yilian.server.clinic.admin.schemas import (
    AllianceIn,
    AlliancePatch,
    DepartmentAdminOut,
    DepartmentIn,
    DepartmentPatch,
    InstitutionIn,
    InstitutionPatch,
    MembersIn,
    PermissionsOut,
)
from yilian.server.clinic.schemas import AllianceOut, InstitutionOut
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("GET", "/api/me/permissions", summary="What the caller may administer: the "
              "browser offers exactly this", tag="administration", response=PermissionsOut)
async def my_permissions(req: ApiRequest) -> PermissionsOut:
    async with req.db.read() as session:
        return await permissions.permissions(session, req.user)


@router.route("POST", "/api/institutions", summary="Create an institution under a parent of a "
              "higher level (administrators)", tag="administration", body=InstitutionIn,
              response=InstitutionOut, status=201)
async def create_institution(req: ApiRequest) -> InstitutionOut:
    async with req.db.write() as session:
        return await institutions.create_institution(session, req.user, req.body, req.ip)


@router.route("PATCH", "/api/institutions/{id}", summary="Rename, re-level or re-parent an "
              "institution (an administrator, or a coordinator of its alliance)",
              tag="administration", body=InstitutionPatch, response=InstitutionOut)
async def change_institution(req: ApiRequest) -> InstitutionOut:
    async with req.db.write() as session:
        return await institutions.change_institution(session, req.user, req.path_id(),
                                                     req.body, req.ip)


@router.route("GET", "/api/institutions/{id}/departments", summary="An institution's "
              "departments, with whether each is in use", tag="administration",
              response=list[DepartmentAdminOut])
async def list_departments(req: ApiRequest) -> list[DepartmentAdminOut]:
    async with req.db.read() as session:
        return await institutions.list_departments(session, req.path_id())


@router.route("POST", "/api/institutions/{id}/departments", summary="Add a department "
              "(an administrator, or a coordinator of the institution's alliance)",
              tag="administration", body=DepartmentIn, response=DepartmentAdminOut, status=201)
async def create_department(req: ApiRequest) -> DepartmentAdminOut:
    async with req.db.write() as session:
        return await institutions.create_department(session, req.user, req.path_id(),
                                                    req.body, req.ip)


@router.route("PATCH", "/api/departments/{id}", summary="Rename a department, change its "
              "specialty or head", tag="administration", body=DepartmentPatch,
              response=DepartmentAdminOut)
async def change_department(req: ApiRequest) -> DepartmentAdminOut:
    async with req.db.write() as session:
        return await institutions.change_department(session, req.user, req.path_id(),
                                                    req.body, req.ip)


@router.route("DELETE", "/api/departments/{id}", summary="Remove a department nobody refers "
              "to (409 department_in_use otherwise)", tag="administration", status=204)
async def remove_department(req: ApiRequest) -> None:
    async with req.db.write() as session:
        await institutions.remove_department(session, req.user, req.path_id(), req.ip)


@router.route("POST", "/api/alliances", summary="Create an alliance with its lead and members "
              "(administrators)", tag="administration", body=AllianceIn, response=AllianceOut,
              status=201)
async def create_alliance(req: ApiRequest) -> AllianceOut:
    async with req.db.write() as session:
        return await alliances.create_alliance(session, req.user, req.body, req.ip)


@router.route("PATCH", "/api/alliances/{id}", summary="Rename an alliance, change its kind, "
              "specialty or lead (administrators)", tag="administration", body=AlliancePatch,
              response=AllianceOut)
async def change_alliance(req: ApiRequest) -> AllianceOut:
    async with req.db.write() as session:
        return await alliances.change_alliance(session, req.user, req.path_id(), req.body,
                                               req.ip)


@router.route("PUT", "/api/alliances/{id}/members", summary="Replace an alliance's members; "
              "the lead stays one (administrators)", tag="administration", body=MembersIn,
              response=AllianceOut)
async def put_members(req: ApiRequest) -> AllianceOut:
    async with req.db.write() as session:
        return await alliances.set_members(session, req.user, req.path_id(), req.body, req.ip)
