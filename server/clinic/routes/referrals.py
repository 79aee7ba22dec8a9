"""Two-way referral over HTTP: refer, list, read, the workflow's transitions, the clinical time
points, sharing, and where a referral may go (the rules are in ``clinic.referrals``)."""

from __future__ import annotations

from yilian.server.clinic import keys as clinic_keys
from yilian.server.clinic.referrals import milestones, service, share, targets
from yilian.server.clinic.referrals.schemas import (
    MilestoneIn,
    ReferralIn,
    ReferralOut,
    ReferralReasonIn,
    ReferralsQuery,
    ReferralTargetOut,
    ShareIn,
    TargetsQuery,
)
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("POST", "/api/referrals", summary="Refer a patient of the caller's institution "
              "up (to a higher level) or down (to a lower one), optionally by the green "
              "channel, sharing studies and consultations", tag="referrals", body=ReferralIn,
              response=ReferralOut, status=201)
async def create_referral(req: ApiRequest) -> ReferralOut:
    catalog = req.request.app[clinic_keys.STUDY_CATALOG]
    async with req.db.write() as session:
        return await service.create(session, catalog, req.user, req.body, req.ip)


@router.route("GET", "/api/referrals", summary="Referrals sent or received by the caller's "
              "institution: open green-channel cases first, then open, then closed; newest "
              "first", tag="referrals", query=ReferralsQuery, response=list[ReferralOut])
async def list_referrals(req: ApiRequest) -> list[ReferralOut]:
    async with req.db.read() as session:
        return await service.list_visible(session, req.user, req.query, req.ip)


@router.route("GET", "/api/referrals/{id}", summary="One referral with its timeline, clinical "
              "clock and what it shares", tag="referrals", response=ReferralOut)
async def get_referral(req: ApiRequest) -> ReferralOut:
    async with req.db.read() as session:
        return await service.read(session, req.user, req.path_id(), req.ip)


def _action_route(action: str, summary: str, body: type | None = None) -> None:
    async def handler(req: ApiRequest) -> ReferralOut:
        async with req.db.write() as session:
            return await service.act(session, req.user, req.path_id(), action,
                                     reason=getattr(req.body, "reason", None), ip=req.ip)

    handler.__name__ = f"{action}_referral"
    router.route("POST", f"/api/referrals/{{id}}/{action}", summary=summary, tag="referrals",
                 body=body, response=ReferralOut)(handler)  # type: ignore[arg-type]


_action_route("accept", "Accept (the receiving team)")
_action_route("reject", "Reject with a reason (the receiving team)", ReferralReasonIn)
_action_route("depart", "Record that the patient left the referring site (the referring team)")
_action_route("arrive", "Record the patient's arrival, the door time (the receiving team)")
_action_route("complete", "Complete the referral (the receiving team)")
_action_route("cancel", "Cancel with a reason (the referring team)", ReferralReasonIn)


@router.route("POST", "/api/referrals/{id}/milestones", summary="Record a time point of the "
              "referral's clock (time defaults to now); one already recorded is corrected and "
              "needs a reason", tag="referrals", body=MilestoneIn, response=ReferralOut)
async def record_milestone(req: ApiRequest) -> ReferralOut:
    async with req.db.write() as session:
        return await milestones.record(session, req.user, req.path_id(), req.body, req.ip)


@router.route("POST", "/api/referrals/{id}/share", summary="Share more studies and "
              "consultations of the patient with the receiving team (the referring team)",
              tag="referrals", body=ShareIn, response=ReferralOut)
async def share_with_referral(req: ApiRequest) -> ReferralOut:
    catalog = req.request.app[clinic_keys.STUDY_CATALOG]
    async with req.db.write() as session:
        return await share.share(session, catalog, req.user, req.path_id(), req.body, req.ip)


@router.route("GET", "/api/referral-targets", summary="Institutions a referral in this "
              "direction may go to, the caller's alliance partners first, with their "
              "departments and who is on call now", tag="referrals", query=TargetsQuery,
              response=list[ReferralTargetOut])
async def list_targets(req: ApiRequest) -> list[ReferralTargetOut]:
    async with req.db.read() as session:
        return await targets.targets(session, req.user, req.query.direction)
