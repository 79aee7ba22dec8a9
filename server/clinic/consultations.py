"""The consultation service: request, list, read, move through the workflow, share studies.

Each public function is one thing a user does; the HTTP routes parse, call one of these, and
return what it returns. The rules themselves are in ``workflow`` (states, transitions, who may
act), ``access`` (who may see) and ``scheduling`` (slots)."""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic import notices
from yilian.server.clinic.access import (
    can_see_consultation,
    consultation_filter,
    get_visible_consultation,
    is_participant,
)
from yilian.server.clinic.models import Consultation, ConsultationEvent, Patient, Slot
from yilian.server.clinic.ports import ChatLog, StudyCatalog
from yilian.server.clinic.scheduling import book_slot, release_slot
from yilian.server.clinic.schemas import (
    ChatMessageOut,
    ConsultationIn,
    ConsultationOut,
    ConsultationsQuery,
    ConsultationWithChatOut,
)
from yilian.server.clinic.sharing import share_studies
from yilian.server.clinic.views import consultation_views, report_states
from yilian.server.clinic.workflow import (
    CALLED_OFF,
    SLOT_REQUIRED_KINDS,
    URGENCY_RANK,
    actor_refusal,
    deadline_for,
    may_act,
    next_state,
)
from yilian.server.core import audit
from yilian.server.core.access import require_clinical
from yilian.server.core.db import Database, utcnow
from yilian.server.core.errors import Conflict, Forbidden, NotFound, SlotTaken, ValidationFailed
from yilian.server.core.models import Institution, User


def apply_transition(
    c: Consultation, action: str, actor: User | None, note: str | None = None
) -> ConsultationEvent:
    """Move ``c`` by ``action`` (raising InvalidTransition) and record who and when."""
    new = next_state(c.status, action)
    event = ConsultationEvent(
        from_status=c.status, to_status=new, actor_id=actor.id if actor else None,
        at=utcnow(), note=note,
    )
    c.status = new
    c.updated_at = event.at
    c.events.append(event)
    return event


async def expire_overdue(db: Database) -> int:
    """Expire requests nobody accepted before their deadline; returns how many."""
    now = utcnow()
    async with db.write() as session:
        overdue = (
            await session.execute(
                # locked: another process's sweep or an accept that commits first is not
                # overwritten (PostgreSQL re-checks the status once the lock is had)
                select(Consultation).where(
                    Consultation.status == "requested", Consultation.deadline < now
                ).with_for_update()
            )
        ).scalars().all()
        for c in overdue:
            apply_transition(c, "expire", None, "nobody accepted before the deadline")
            await release_slot(session, c.slot_id)  # it will not take place
            await notices.expired(session, c)
    return len(overdue)


async def _view(session: AsyncSession, c: Consultation, viewer: User) -> ConsultationOut:
    return (await consultation_views(session, [c], viewer))[0]


async def _take_slot(session: AsyncSession, slot_id: int, expert_id: int) -> Slot:
    """Book a slot for a consultation, or raise 409 ``slot_taken`` / 422."""
    if await book_slot(session, slot_id, expert_id):
        slot = await session.get(Slot, slot_id)
        assert slot is not None
        return slot
    slot = await session.get(Slot, slot_id)
    if slot is None or slot.expert_id != expert_id:
        raise ValidationFailed(f"expert {expert_id} has no slot {slot_id}",
                               details={"field": "slot_id"})
    if slot.status == "booked":
        raise SlotTaken(f"slot {slot_id} is already booked", details={"slot_id": slot_id})
    raise Conflict(f"slot {slot_id} cannot be booked (it is {slot.status} or in the past)",
                   code="slot_unavailable", details={"slot_id": slot_id, "status": slot.status})


async def create(session: AsyncSession, catalog: StudyCatalog, user: User, body: ConsultationIn,
                 ip: str | None) -> ConsultationOut:
    """Request a consultation with an expert (in one of their slots) or a specialty queue."""
    require_clinical(user, "request consultations")
    if body.slot_id and not body.expert_id:
        raise ValidationFailed("a slot_id needs the expert_id it belongs to",
                               details={"field": "slot_id"})
    if not body.expert_id and not (body.specialty or body.target_institution_id):
        raise ValidationFailed("name an expert_id, or a specialty and/or target_institution_id "
                               "queue", details={"field": "expert_id"})
    patient = await session.get(Patient, body.patient_id)
    if patient is None or patient.institution_id != user.institution_id:
        raise NotFound(f"no patient {body.patient_id} at your institution",
                       details={"field": "patient_id"})
    if body.expert_id:
        expert = await session.get(User, body.expert_id)
        if expert is None or expert.role != "specialist" or not expert.active:
            raise ValidationFailed(f"no expert {body.expert_id}", details={"field": "expert_id"})
        if expert.id == user.id:
            raise ValidationFailed("you cannot request a consultation with yourself",
                                   details={"field": "expert_id"})
    if body.target_institution_id and await session.get(
        Institution, body.target_institution_id
    ) is None:
        raise ValidationFailed(f"no institution {body.target_institution_id}",
                               details={"field": "target_institution_id"})
    slot = (await _take_slot(session, body.slot_id, body.expert_id)
            if body.slot_id and body.expert_id else None)
    now = utcnow()
    c = Consultation(
        patient_id=patient.id, requester_id=user.id,
        requester_institution_id=user.institution_id, kind=body.kind,
        urgency=body.urgency, question=body.question, expert_id=body.expert_id,
        slot_id=slot.id if slot else None, specialty=body.specialty,
        target_institution_id=body.target_institution_id,
        deadline=deadline_for(body.urgency, now, slot.start if slot else None),
        status="requested", created_at=now, updated_at=now, events=[], studies=[],
    )
    session.add(c)
    c.events.append(ConsultationEvent(from_status=None, to_status="requested", actor_id=user.id,
                                      at=now))
    await session.flush()
    if slot:
        slot.consultation_id = c.id
    if body.study_uids:
        await share_studies(session, catalog, user, c, body.study_uids)
    audit.record(session, user, "create", "consultation", c.id, patient_id=c.patient_id, ip=ip)
    await notices.requested(session, c, user)
    return (await consultation_views(session, [c], user, new=True))[0]


async def list_visible(session: AsyncSession, user: User, q: ConsultationsQuery,
                       ip: str | None) -> list[ConsultationOut]:
    """The consultations this user may see, the most urgent first, then the newest."""
    require_clinical(user, "list consultations")
    stmt = select(Consultation).where(consultation_filter(user))
    if q.status:
        stmt = stmt.where(Consultation.status == q.status)
    if q.kind:
        stmt = stmt.where(Consultation.kind == q.kind)
    if q.role == "requester":
        stmt = stmt.where(Consultation.requester_id == user.id)
    elif q.role == "expert":
        stmt = stmt.where(Consultation.expert_id == user.id)
    elif q.role == "queue":
        stmt = stmt.where(Consultation.expert_id.is_(None))
    urgency = case(URGENCY_RANK, value=Consultation.urgency, else_=len(URGENCY_RANK))
    stmt = stmt.order_by(urgency, Consultation.created_at.desc(), Consultation.id.desc()).limit(500)
    rows = (await session.execute(stmt)).scalars().all()
    audit.record(session, user, "list", "consultation", None, ip=ip,
                 detail={"ids": [c.id for c in rows]})
    return await consultation_views(session, rows, user)


async def read(session: AsyncSession, chat: ChatLog, user: User, consultation_id: int,
               ip: str | None) -> ConsultationWithChatOut:
    """One consultation with its history and the chat of its video room (the chat only for
    those who see the consultation itself: a referral shares its report and studies, not what
    the requester and the expert said to each other)."""
    c = await get_visible_consultation(session, user, consultation_id)
    audit.record(session, user, "read", "consultation", c.id, patient_id=c.patient_id, ip=ip)
    view = await _view(session, c, user)
    messages = ([ChatMessageOut.model_validate(m) for m in await chat.messages(session, c.id)]
                if can_see_consultation(user, c) else [])
    return ConsultationWithChatOut(**dict(view), chat=messages)


async def act(session: AsyncSession, user: User, consultation_id: int, action: str, *,
              slot_id: int | None = None, reason: str | None = None,
              ip: str | None = None) -> ConsultationOut:
    """Take ``action`` (accept, decline, cancel, start, no_show, complete) on a consultation."""
    c = await get_visible_consultation(session, user, consultation_id, for_update=True)
    # A specialist who sees an unassigned request sees it through their queue.
    reaches_queue = user.role == "specialist"
    if not may_act(action, user.id, c.requester_id, c.expert_id, reaches_queue):
        raise Forbidden(actor_refusal(action))
    next_state(c.status, action)  # a clear 409 before anything is touched
    if action == "accept":
        await _accept(session, user, c, slot_id)
    elif action in ("decline", "cancel"):
        c.reason = reason
    elif action == "complete" and (await report_states(session, [c.id])).get(c.id) != "signed":
        raise Conflict("sign the report before completing the consultation",
                       code="report_not_signed")
    apply_transition(c, action, user, reason if action in ("decline", "cancel") else None)
    if c.status in CALLED_OFF:
        await release_slot(session, c.slot_id)  # it will not take place
    audit.record(session, user, action, "consultation", c.id, patient_id=c.patient_id, ip=ip)
    await notices.answered(session, c, user, action, reason)
    return await _view(session, c, user)


async def _accept(session: AsyncSession, user: User, c: Consultation, wanted: int | None) -> None:
    if wanted and wanted != c.slot_id:
        slot = await _take_slot(session, wanted, user.id)
        await release_slot(session, c.slot_id)
        slot.consultation_id = c.id
        c.slot_id = slot.id
        c.deadline = max(c.deadline, slot.start)
    elif c.slot_id is None and c.kind in SLOT_REQUIRED_KINDS and c.urgency != "emergency":
        raise ValidationFailed(f"a {c.kind} consultation is accepted into one of your slots: "
                               "send slot_id", code="slot_required", details={"field": "slot_id"})
    c.expert_id = user.id


async def share_study(session: AsyncSession, catalog: StudyCatalog, user: User,
                      consultation_id: int, study_uid: str, ip: str | None) -> ConsultationOut:
    """Share one more study with the consultation (its requester or expert)."""
    c = await get_visible_consultation(session, user, consultation_id)
    if not is_participant(user, c):
        raise Forbidden("only the requester or the expert may share studies")
    if c.status in CALLED_OFF:
        raise Conflict(f'cannot share studies with a consultation in state "{c.status}"',
                       code="invalid_transition")
    await share_studies(session, catalog, user, c, [study_uid])
    audit.record(session, user, "share_study", "consultation", c.id, patient_id=c.patient_id,
                 ip=ip, detail={"study_uid": study_uid})
    return await _view(session, c, user)
