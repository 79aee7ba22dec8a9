"""Consultation notifications: who hears of each step, and what it says (zh-CN and en).

The texts name people, institutions, the kind of consultation and its number, never the
patient: a title may show on a locked screen (the browser's Notification API) and an inbox
outlives the case. The consultation page the notification links to shows the rest to those
who may see it. Each function adds inbox rows in the caller's transaction (``core.notify``), on a
synchronous session (the workflow runs as one; async callers go through ``run_sync``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from yilian.server.clinic.models import Consultation
from yilian.server.core import notify
from yilian.server.core.db import by_id
from yilian.server.core.models import User
from yilian.server.core.notify import Addressee
from yilian.server.core.writes import Writes

_KIND = {
    "video": ("视频会诊", "video consultation"),
    "outpatient": ("远程门诊", "remote outpatient consultation"),
    "imaging": ("影像诊断", "imaging read"),
    "pathology": ("病理诊断", "pathology read"),
}
_URGENCY = {"routine": ("常规", "routine"), "urgent": ("加急", "urgent"),
            "emergency": ("急诊", "emergency")}
_ANSWERED = {"accept": "consultation.accepted", "decline": "consultation.declined",
             "cancel": "consultation.cancelled"}
#: The longest reason quoted in a notification's body.
_REASON_CHARS = 200


class Person(NamedTuple):
    """The columns of a user that a notice and a view need (read without the ORM)."""

    id: int
    display_name: str
    locale: str | None
    active: bool


def _kind(c: Consultation) -> tuple[str, str]:
    return _KIND.get(c.kind, (c.kind, c.kind))


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _reason(reason: str | None) -> tuple[str, str]:
    if not reason:
        return "", ""
    text = reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"
    return f"：{text}", f": {text}"


def _users(session: Session, *ids: int | None) -> list[User]:
    # By primary key: those the transaction already holds cost no SQL.
    return [u for i in ids if i is not None and (u := by_id(session, User, i)) is not None]


def _send(session: Session, users: Sequence[Addressee], c: Consultation, kind: str,
          zh: tuple[str, str], en: tuple[str, str], *, urgent: bool = False,
          writes: Writes | None = None) -> None:
    notify.send(session, users, kind, {"zh-CN": zh, "en": en},
                resource_type="consultation", resource_id=c.id, urgent=urgent, writes=writes)


def queue_specialists(session: Session, c: Consultation) -> list[User]:
    """The specialists an unassigned request reaches (``access.consultation_filter``'s queue
    rule): the target institution's, of the requested specialty when one is named."""
    if c.target_institution_id is None:
        return []
    rows = session.execute(select(User).where(
        User.role == "specialist", User.active.is_(True),
        User.institution_id == c.target_institution_id))
    return [u for u in rows.scalars()
            if c.specialty is None or c.specialty in (u.specialties or [])]


def requested(session: Session, c: Consultation, requester: User, *,
              expert: Addressee | None, place: tuple[str, str],
              writes: Writes | None = None) -> None:
    """A new request: to the named expert (``expert``, the row of ``c.expert_id``), or to
    every specialist its queue reaches. An emergency is urgent (sound and the browser's
    notification). ``place``: the requester's institution, its name and local name;
    ``writes``: the batch that inserts the rows with the request (``core.writes``)."""
    recipients: list[Addressee] = [expert] if expert is not None else list(
        queue_specialists(session, c))
    recipients = [u for u in recipients if u.id != requester.id]
    if not recipients:
        return
    en_place, zh_place = place
    (zh_kind, en_kind), (zh_urg, en_urg) = _kind(c), _URGENCY.get(c.urgency, (c.urgency,) * 2)
    emergency = c.urgency == "emergency"
    zh = ("急诊会诊申请" if emergency else "新的会诊申请",
          f"{zh_place} {requester.display_name} 申请{zh_kind}（{zh_urg}，#{c.id}）")
    en = ("Emergency consultation request" if emergency else "New consultation request",
          f"{requester.display_name}, {en_place}, requests {_a(en_kind)} ({en_urg}, #{c.id})")
    _send(session, recipients, c, "consultation.requested", zh, en, urgent=emergency,
          writes=writes)


def answered(session: Session, c: Consultation, actor: User, action: str,
             reason: str | None, *, requester: Addressee, expert: Addressee | None,
             writes: Writes | None = None) -> None:
    """Accepted, declined or cancelled: the other side hears of it (the requester, or for a
    cancellation the assigned expert; an unassigned request's queue is not told).
    ``requester``: the row of ``c.requester_id``; ``expert``, of the expert assigned before
    the action (None for a queue's request); ``writes``: the batch that inserts the rows with
    the change."""
    zh_kind, en_kind = _kind(c)
    zh_why, en_why = _reason(reason)
    name = actor.display_name
    recipients: list[Addressee] = [requester]
    if action == "accept":
        zh = ("会诊已接受", f"{name} 已接受您的{zh_kind}申请（#{c.id}）")
        en = ("Consultation accepted", f"{name} accepted your {en_kind} request (#{c.id})")
    elif action == "decline":
        zh = ("会诊申请被拒绝", f"{name} 拒绝了您的{zh_kind}申请（#{c.id}）{zh_why}")
        en = ("Consultation declined", f"{name} declined your {en_kind} request (#{c.id}){en_why}")
    elif action == "cancel":
        recipients = [expert] if expert is not None else []
        zh = ("会诊已取消", f"{name} 取消了{zh_kind}申请（#{c.id}）{zh_why}")
        en = ("Consultation cancelled", f"{name} cancelled the {en_kind} request (#{c.id}){en_why}")
    else:
        return
    recipients = [u for u in recipients if u.id != actor.id]
    _send(session, recipients, c, _ANSWERED[action], zh, en, writes=writes)


def expired(session: Session, c: Consultation) -> None:
    """Nobody accepted the request in time: its requester hears of it."""
    zh_kind, en_kind = _kind(c)
    _send(session, _users(session, c.requester_id), c, "consultation.expired",
          ("会诊申请已过期", f"您的{zh_kind}申请（#{c.id}）在期限内无人接受，已过期"),
          ("Consultation request expired",
           f"Nobody accepted your {en_kind} request (#{c.id}) in time"))


def report_signed(session: Session, c: Consultation, signer: User) -> None:
    """A signed report (first or corrected): the requester hears of it."""
    zh_kind, en_kind = _kind(c)
    recipients = [u for u in _users(session, c.requester_id) if u.id != signer.id]
    _send(session, recipients, c, "report.signed",
          ("会诊报告已签发", f"{signer.display_name} 签发了{zh_kind}（#{c.id}）的报告"),
          ("Consultation report signed",
           f"{signer.display_name} signed the report of {en_kind} #{c.id}"))
