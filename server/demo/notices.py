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

from yilian.server.clinic.models import Consultation, FollowUp, Patient, Referral
from yilian.server.core.models import Department, Institution, Notification, User
from yilian.server.core.notify import text_for
from yilian.server.demo.oncall import Rosters

ZONE = ZoneInfo("Asia/Shanghai")
CHANNEL = {"stroke": ("卒中", "stroke"), "chest_pain": ("胸痛", "chest pain")}
DEPARTMENT_ZH = {"cardiology": "心血管内科", "neurology": "神经内科",
                 "neurosurgery": "神经外科", "emergency": "急诊科"}
# kind -> (zh-CN title, zh-CN body, en title, en body), formatted with the case's fields
TEXTS = {
    "referral.green_channel": ("绿色通道：{channel_zh}患者 {patient_zh} 转入",
                               "{from_zh} → {to_zh} {dept_zh}，请立即接收",
                               "Green channel: {channel_en} patient {patient_en}",
                               "{from_en} → {to_en} {dept_en}: accept now"),
    "referral.escalated": ("绿色通道未接收已升级：{patient_zh}",
                           "{from_zh}的{channel_zh}转诊 5 分钟内无人接收",
                           "Green channel escalated: {patient_en}",
                           "The {channel_en} referral from {from_en} was not accepted in 5 min"),
    "referral.requested": ("新的转诊申请：{patient_zh}", "{from_zh} → {to_zh} {dept_zh}",
                           "New referral: {patient_en}", "{from_en} → {to_en} {dept_en}"),
    "referral.accepted": ("转诊已接收：{patient_zh}", "{to_zh} {dept_zh} 已接收",
                          "Referral accepted: {patient_en}", "Accepted by {to_en} {dept_en}"),
    "referral.rejected": ("转诊被拒绝：{patient_zh}", "{to_zh}：{note}",
                          "Referral declined: {patient_en}", "{to_en}: {note}"),
    "referral.expired": ("转诊已过期：{patient_zh}", "{to_zh} 在期限内未答复",
                         "Referral expired: {patient_en}", "{to_en} did not answer in time"),
    "follow_up.created": ("随访待完成：{patient_zh}", "到期 {due}：{plan}",
                          "Follow-up to do: {patient_en}", "Due {due}: {plan}"),
    "consultation.requested": ("新的会诊申请：{patient_zh}", "{from_zh}：{note}",
                               "New consultation request: {patient_en}", "{from_en}: {note}"),
}


def _local_name(i: Institution) -> str:
    """The Chinese name people use: 电白区人民医院 of "广东省人民医院粤西医院 / 电白区人民医院"."""
    return (i.local_name or i.name).split(" / ")[-1]


def _names(name: str) -> tuple[str, str]:
    """("张德海", "Zhang Dehai") from "Zhang Dehai (张德海)"."""
    latin, _, local = name.partition(" (")
    return (local.rstrip(")") or latin), latin


class Inbox:
    """Adds notifications with the fields of a case."""

    def __init__(self, session: AsyncSession, inst: dict[int, Institution],
                 depts: dict[int, Department], patients: dict[int, Patient]) -> None:
        self.session, self.inst, self.depts, self.patients = session, inst, depts, patients

    def fields(self, r: Referral | Consultation) -> dict[str, str]:
        zh, en = _names(self.patients[r.patient_id].name)
        out = {"patient_zh": zh, "patient_en": en, "note": "", "due": "", "plan": ""}
        if isinstance(r, Consultation):
            source = self.inst[r.requester_institution_id]
            out.update(from_zh=_local_name(source), from_en=source.name,
                       note=r.question)
            return out
        source, target = self.inst[r.from_institution_id], self.inst[r.to_institution_id]
        dept = self.depts.get(r.department_id) if r.department_id else None
        channel = CHANNEL.get(r.green_channel or "", ("", ""))
        out.update(from_zh=_local_name(source), from_en=source.name,
                   to_zh=_local_name(target), to_en=target.name,
                   dept_zh=DEPARTMENT_ZH.get(dept.specialty or "", dept.name) if dept else "",
                   dept_en=dept.name if dept else "", channel_zh=channel[0],
                   channel_en=channel[1], note=r.close_reason or "")
        return out

    def add(self, users: Iterable[User], kind: str, case: Referral | Consultation,
            at: datetime, read_at: datetime | None = None, urgent: bool = False,
            **extra: str) -> None:
        zh_title, zh_body, en_title, en_body = TEXTS[kind]
        f = self.fields(case) | extra
        texts = {"zh-CN": (zh_title.format(**f), zh_body.format(**f)),
                 "en": (en_title.format(**f), en_body.format(**f))}
        resource = "consultation" if isinstance(case, Consultation) else "referral"
        for user in users:
            title, body = text_for(texts, user.locale)
            self.session.add(Notification(
                user_id=user.id, kind=kind, title=title[:200], body=body, resource_type=resource,
                resource_id=str(case.id), urgent=urgent, created_at=at, read_at=read_at))


def seed_inbox(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
               patients: dict[str, Patient], referrals: dict[str, Referral],
               follow_ups: list[FollowUp], consultations: dict[str, Consultation],
               rosters: Rosters) -> None:
    """The demo users' notifications (ids of referrals and follow-ups must be flushed)."""
    depts = {d.id: d for i in inst.values() for d in i.departments}
    inbox = Inbox(session, {i.id: i for i in inst.values()}, depts,
                  {p.id: p for p in patients.values()})
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
        inbox.add([users["village"]], "follow_up.created", case, f.created_at,
                  due=due, plan=f.plan or "")
    request = consultations["requested_video"]
    inbox.add([users["expert"]], "consultation.requested", request, request.created_at)
