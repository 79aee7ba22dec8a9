"""Consultation reports over HTTP (the rules are in ``clinic.reports``)."""

from __future__ import annotations

from yilian.server.clinic import reports
from yilian.server.clinic.schemas import ReportIn, ReportOut, ReportSignIn
from yilian.server.core import keys
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("POST", "/api/consultations/{id}/report", summary="Write or update the draft "
              "report; after signing, this starts a correction (a new version)",
              tag="reports", body=ReportIn, response=ReportOut)
async def write_report(req: ApiRequest) -> ReportOut:
    async with req.db.write() as session:
        return await reports.write(session, req.user, req.path_id(), req.body, req.ip)


@router.route("POST", "/api/consultations/{id}/report/sign", summary="Sign the draft report; "
              "a signed version is frozen. With {\"password\"} (the signer's, re-entered) the "
              "version records signed_with_password; a wrong one is 403 invalid_password and "
              "counts as a failed login. The body may be left out.", tag="reports",
              body=ReportSignIn, body_required=False, response=ReportOut)
async def sign_report(req: ApiRequest) -> ReportOut:
    body: ReportSignIn | None = req.body
    password = body.password if body is not None else None
    cid = req.path_id()
    if password is not None:
        await reports.confirm_signer(req.db, req.request.app[keys.LOGIN_LIMITER], req.user, cid,
                                     password, req.ip)
    async with req.db.write() as session:
        return await reports.sign(session, req.user, cid, req.ip,
                                  with_password=password is not None)


@router.route("GET", "/api/consultations/{id}/report", summary="The report: the newest version "
              "and every earlier one (others than the expert see signed versions only)",
              tag="reports", response=ReportOut)
async def get_report(req: ApiRequest) -> ReportOut:
    async with req.db.read() as session:
        return await reports.read(session, req.user, req.path_id(), req.ip)
