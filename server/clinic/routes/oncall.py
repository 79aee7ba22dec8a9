"""On-call rosters and department heads over HTTP (the rules are in
``clinic.referrals.oncall``)."""

from __future__ import annotations

from yilian.server.clinic.referrals import oncall
from yilian.server.clinic.referrals.schemas import (
    DepartmentHeadIn,
    DepartmentHeadOut,
    OnCallIn,
    OnCallOut,
    OnCallQuery,
)
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("GET", "/api/on-call", summary="On-call shifts overlapping a range (default: "
              "the next seven days), by department or institution", tag="on-call",
              query=OnCallQuery, response=list[OnCallOut])
async def list_on_call(req: ApiRequest) -> list[OnCallOut]:
    async with req.db.read() as session:
        return await oncall.shifts(session, req.query)


@router.route("POST", "/api/on-call", summary="Put a member of the department's institution "
              "on call (a coordinator of its alliance or an admin; at most 7 days)",
              tag="on-call", body=OnCallIn, response=OnCallOut, status=201)
async def add_on_call(req: ApiRequest) -> OnCallOut:
    async with req.db.write() as session:
        return await oncall.add_shift(session, req.user, req.body, req.ip)


@router.route("DELETE", "/api/on-call/{id}", summary="Take a shift off the roster",
              tag="on-call", status=204)
async def remove_on_call(req: ApiRequest) -> None:
    async with req.db.write() as session:
        await oncall.remove_shift(session, req.user, req.path_id(), req.ip)


@router.route("PUT", "/api/departments/{id}/head", summary="Name the department's head (null "
              "clears it): green-channel referrals nobody accepts escalate to them",
              tag="on-call", body=DepartmentHeadIn, response=DepartmentHeadOut)
async def set_department_head(req: ApiRequest) -> DepartmentHeadOut:
    async with req.db.write() as session:
        return await oncall.set_head(session, req.user, req.path_id(), req.body, req.ip)
