"""Consultation reports over HTTP (the rules are in ``clinic.reports``)."""

from __future__ import annotations

from yilian.server.clinic import reports
from yilian.server.clinic.schemas import ReportIn, ReportOut
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("POST", "/api/consultations/{id}/report", summary="Write or update the draft "
              "report; after signing, this starts a correction (a new version)",
              tag="reports", body=ReportIn, response=ReportOut)
async def write_report(req: ApiRequest) -> ReportOut:
    async with req.db.write() as session:
        return await reports.write(session, req.user, req.path_id(), req.body, req.ip)


@router.route("POST", "/api/consultations/{id}/report/sign", summary="Sign the draft report; "
              "a signed version is frozen", tag="reports", response=ReportOut)
async def sign_report(req: ApiRequest) -> ReportOut:
    async with req.db.write() as session:
        return await reports.sign(session, req.user, req.path_id(), req.ip)


@router.route("GET", "/api/consultations/{id}/report", summary="The report: the newest version "
              "and every earlier one (others than the expert see signed versions only)",
              tag="reports", response=ReportOut)
async def get_report(req: ApiRequest) -> ReportOut:
    async with req.db.read() as session:
        return await reports.read(session, req.user, req.path_id(), req.ip)
