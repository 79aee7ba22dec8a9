"""A few inbox rows for the demo users, as the referral and consultation workflows would have
left them, so the bell is not empty: ``county`` has an unread green-channel alert (the
chest-pain case) and a referral to accept, ``village`` two follow-ups to do, ``township`` an
accepted stroke referral, ``coordinator`` an escalation, ``expert`` a consultation request,
``guilin_doctor`` an expired request. Titles in each user's language (Chinese by default)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import Consultation, FollowUp, Referral
from yilian.server.clinic.referrals.notices import texts as referral_texts
from yilian.server.core.models import Institution, Notification, User
from yilian.server.core.notify import Texts, text_for
from yilian.server.demo.oncall import Rosters

ZONE = ZoneInfo("Asia/Shanghai")
# The consultation request seeded for the expert (the referral kinds use the live tables of
# ``clinic.referrals.notices``); like the live texts, no patient name or clinical text.
CONSULTATION_REQUESTED = {
    "zh-CN": ("新的会诊申请", "{from_zh} 申请会诊（#{id}）"),
    "en": ("New consultation request", "{from_en} requests a consultation (#{id})"),
}


def _local_name(i: Institution) -> str:
    """The Chinese name people use: 电白区人民医院 of "广东省人民医院粤西医院 / 电白区人民医院"."""
    return (i.local_name or i.name).split(" / ")[-1]


class Inbox:
    """Adds notifications with the fields of a case."""

    def __init__(self, session: AsyncSession, inst: dict[int, Institution]) -> None:
        self.session, self.inst = session, inst

    def add(self, users: Iterable[User], kind: str, case: Referral | Consultation,
            at: datetime, read_at: datetime | None = None, urgent: bool = False,
            **extra: str) -> None:
        """Seed ``kind`` about ``case`` for ``users``, worded as the live notification is."""
        if isinstance(case, Consultation):
            source = self.inst[case.requester_institution_id]
            f = {"from_zh": _local_name(source), "from_en": source.name, "id": case.id}
            texts: Texts = {loc: (title.format(**f), body.format(**f))
                            for loc, (title, body) in CONSULTATION_REQUESTED.items()}
            resource = "consultation"
        else:
            source, target = self.inst[case.from_institution_id], self.inst[case.to_institution_id]
            texts = referral_texts(kind, from_name=(source.name, source.local_name),
                                   to_name=(target.name, target.local_name),
                                   channel=case.green_channel or "", direction=case.direction,
                                   id=case.id, minutes=5, **extra)
            resource = "referral"
        for user in users:
            title, body = text_for(texts, user.locale)
            self.session.add(Notification(
                user_id=user.id, kind=kind, title=title[:200], body=body, resource_type=resource,
                resource_id=str(case.id), urgent=urgent, created_at=at, read_at=read_at))


def seed_inbox(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
               referrals: dict[str, Referral],
               follow_ups: list[FollowUp], consultations: dict[str, Consultation],
               rosters: Rosters) -> None:
    """The demo users' notifications (ids of referrals and follow-ups must be flushed)."""
    inbox = Inbox(session, {i.id: i for i in inst.values()})
    r = referrals

    def on_call(case: Referral, at: datetime) -> list[User]:
        return [rosters.on_call(case.department_id, at)] if case.department_id else []

    def accepted(case: Referral) -> datetime:
        assert case.accepted_at is not None, case.status
        return case.accepted_at

    chest = r["chest_pain"]
    inbox.add(on_call(chest, chest.requested_at), "referral.green_channel", chest,
              chest.requested_at, urgent=True)  # ``county`` has not opened it yet
    inbox.add([users["township"]], "referral.accepted", chest, accepted(chest),
              read_at=chest.accepted_at)
    for key in ("running_stroke", "yangshuo_stroke"):
        case = r[key]
        inbox.add(on_call(case, case.requested_at), "referral.green_channel", case,
                  case.requested_at, read_at=case.accepted_at, urgent=True)
        inbox.add([next(u for u in users.values() if u.id == case.requester_id)],
                  "referral.accepted", case, accepted(case),
                  read_at=None if key == "running_stroke" else case.accepted_at)
    night = r["night_stroke"]
    assert night.escalated_at is not None
    inbox.add(on_call(night, night.requested_at), "referral.green_channel", night,
              night.requested_at, read_at=night.arrived_at, urgent=True)
    inbox.add([users["county_neurology"]], "referral.escalated", night, night.escalated_at,
              read_at=night.accepted_at, urgent=True)
    inbox.add([users["coordinator"]], "referral.escalated", night, night.escalated_at,
              urgent=True)
    waiting = r["requested"]
    staff = [u for u in users.values() if u.department_id == waiting.department_id]
    inbox.add(staff, "referral.requested", waiting, waiting.requested_at)
    inbox.add([users["township"]], "referral.accepted", r["in_transit"],
              accepted(r["in_transit"]), read_at=r["in_transit"].accepted_at)
    inbox.add([users["township"]], "referral.rejected", r["rejected"], r["rejected"].updated_at,
              read_at=r["rejected"].updated_at)
    bed = r["accepted"]
    inbox.add([users["expert"]], "referral.requested", bed, bed.requested_at,
              read_at=bed.accepted_at)
    inbox.add([users["county"]], "referral.accepted", bed, accepted(bed))
    inbox.add([users["guilin_doctor"]], "referral.expired", r["expired"], r["expired"].updated_at)
    for f in follow_ups:
        if f.status != "due":
            continue
        case = next(x for x in referrals.values() if x.id == f.referral_id)
        due = f.due_at.astimezone(ZONE).strftime("%Y-%m-%d")
        inbox.add([users["village"]], "follow_up.created", case, f.created_at, due=due)
    request = consultations["requested_video"]
    inbox.add([users["expert"]], "consultation.requested", request, request.created_at)
