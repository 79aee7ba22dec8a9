"""Follow-ups of downward referrals over HTTP (the rules are in
``clinic.referrals.followups``)."""

from __future__ import annotations

from yilian.server.clinic.referrals import followups
from yilian.server.clinic.referrals.schemas import (
    FollowUpCompleteIn,
    FollowUpOut,
    FollowUpsQuery,
)
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("GET", "/api/follow-ups", summary="Follow-ups at the caller's institution, "
              "earliest due first: by default the open ones (overdue flagged)",
              tag="referrals", query=FollowUpsQuery, response=list[FollowUpOut])
async def list_follow_ups(req: ApiRequest) -> list[FollowUpOut]:
    async with req.db.read() as session:
        return await followups.list_due(session, req.user, req.query, req.ip)


@router.route("POST", "/api/follow-ups/{id}/complete", summary="Record the follow-up's "
              "outcome", tag="referrals", body=FollowUpCompleteIn, response=FollowUpOut)
async def complete_follow_up(req: ApiRequest) -> FollowUpOut:
    body: FollowUpCompleteIn = req.body
    async with req.db.write() as session:
        return await followups.complete(session, req.user, req.path_id(), body.outcome, req.ip)
