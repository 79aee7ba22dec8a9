"""The consultation workflow over HTTP: request, accept, decline, cancel, start, complete."""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access import (
    can_see_consultation,
    consultation_filter,
    get_visible_consultation,
    require_clinical,
)
from server.api import ApiRequest, ApiRouter
from server.consultations import apply_transition, consultation_views, end_early, report_states
from server.db import utcnow
from server.errors import Conflict, Forbidden, NotFound, SlotTaken, ValidationFailed
from server.models import Consultation, ConsultationEvent, Institution, Patient, Slot, User
from server.scheduling import book_slot, release_slot
from server.schemas import (
    AcceptIn,
    ConsultationIn,
    ConsultationOut,
    ConsultationsQuery,
    ReasonIn,
    StudyIn,
)
from server.sharing import share_studies
from server.workflow import deadline_for, next_state
from signaling.routes import consultation_chat
from signaling.schemas import ConsultationWithChatOut

router = ApiRouter()
SLOT_REQUIRED_KINDS = ("video", "outpatient")


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


@router.route("POST", "/api/consultations", summary="Request a remote consultation with a named "
              "expert (optionally in one of their free slots) or a specialty queue",
              tag="consultations", body=ConsultationIn, response=ConsultationOut, status=201)
async def create_consultation(req: ApiRequest) -> ConsultationOut:
    require_clinical(req.user, "request consultations")
    body: ConsultationIn = req.body
    if body.slot_id and not body.expert_id:
        raise ValidationFailed("a slot_id needs the expert_id it belongs to",
                               details={"field": "slot_id"})
    if not body.expert_id and not (body.specialty or body.target_institution_id):
        raise ValidationFailed("name an expert_id, or a specialty and/or target_institution_id "
                               "queue", details={"field": "expert_id"})
    async with req.db.write() as session:
        patient = await session.get(Patient, body.patient_id)
        if patient is None or patient.institution_id != req.user.institution_id:
            raise NotFound(f"no patient {body.patient_id} at your institution",
                           details={"field": "patient_id"})
        if body.expert_id:
            expert = await session.get(User, body.expert_id)
            if expert is None or expert.role != "specialist" or not expert.active:
                raise ValidationFailed(f"no expert {body.expert_id}",
                                       details={"field": "expert_id"})
            if expert.id == req.user.id:
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
            patient_id=patient.id, requester_id=req.user.id,
            requester_institution_id=req.user.institution_id, kind=body.kind,
            urgency=body.urgency, question=body.question, expert_id=body.expert_id,
            slot_id=slot.id if slot else None, specialty=body.specialty,
            target_institution_id=body.target_institution_id,
            deadline=deadline_for(body.urgency, now, slot.start if slot else None),
            status="requested", created_at=now, updated_at=now, events=[], studies=[],
        )
        session.add(c)
        c.events.append(_created_event(req.user))
        await session.flush()
        if slot:
            slot.consultation_id = c.id
        if body.study_uids:
            await share_studies(session, req.user, c, body.study_uids)
            await session.refresh(c, ["studies"])
        audit.record(session, req.user, "create", "consultation", c.id, patient_id=c.patient_id,
                     ip=req.ip)
        return (await consultation_views(session, [c], req.user, new=True))[0]


def _created_event(user: User) -> ConsultationEvent:
    return ConsultationEvent(from_status=None, to_status="requested", actor_id=user.id,
                             at=utcnow())


@router.route("GET", "/api/consultations", summary="Consultations the caller may see: their "
              "institution's requests, their assignments and their specialty queue",
              tag="consultations", query=ConsultationsQuery, response=list[ConsultationOut])
async def list_consultations(req: ApiRequest) -> list[ConsultationOut]:
    require_clinical(req.user, "list consultations")
    q: ConsultationsQuery = req.query
    stmt = select(Consultation).where(consultation_filter(req.user))
    if q.status:
        stmt = stmt.where(Consultation.status == q.status)
    if q.kind:
        stmt = stmt.where(Consultation.kind == q.kind)
    if q.role == "requester":
        stmt = stmt.where(Consultation.requester_id == req.user.id)
    elif q.role == "expert":
        stmt = stmt.where(Consultation.expert_id == req.user.id)
    elif q.role == "queue":
        stmt = stmt.where(Consultation.expert_id.is_(None))
    urgency = case({"emergency": 0, "urgent": 1}, value=Consultation.urgency, else_=2)
    stmt = stmt.order_by(urgency, Consultation.created_at.desc(), Consultation.id.desc()).limit(500)
    async with req.db.write() as session:
        rows = (await session.execute(stmt)).scalars().all()
        audit.record(session, req.user, "list", "consultation", None, ip=req.ip,
                     detail={"ids": [c.id for c in rows]})
        return await consultation_views(session, rows, req.user)


@router.route("GET", "/api/consultations/{id}", summary="One consultation with its history "
              "and the chat of its video room", tag="consultations",
              response=ConsultationWithChatOut)
async def get_consultation(req: ApiRequest) -> ConsultationWithChatOut:
    async with req.db.write() as session:
        c = await get_visible_consultation(session, req.user, req.path_id())
        audit.record(session, req.user, "read", "consultation", c.id, patient_id=c.patient_id,
                     ip=req.ip)
        view = await _view(session, c, req.user)
        # Chat said in the video room (signaling/) is kept with the consultation.
        chat = await consultation_chat(session, c.id)
        return ConsultationWithChatOut(**dict(view), chat=chat)


def _is_responder(user: User, c: Consultation) -> bool:
    """The assigned expert, or (while unassigned) a specialist the queue reaches."""
    if c.expert_id is not None:
        return c.expert_id == user.id
    return user.role == "specialist" and can_see_consultation(user, c)


async def _transition(req: ApiRequest, action: str) -> ConsultationOut:
    """Load, authorise by action, move, audit and return the consultation."""
    async with req.db.write() as session:
        c = await get_visible_consultation(session, req.user, req.path_id(), for_update=True)
        note: str | None = None
        if action in ("accept", "decline"):
            if not _is_responder(req.user, c):
                raise Forbidden(f"only the assigned expert may {action} this consultation")
        elif action == "cancel":
            if req.user.id != c.requester_id:
                raise Forbidden("only the requester may cancel this consultation")
        elif action == "start":
            if req.user.id not in (c.requester_id, c.expert_id):
                raise Forbidden("only the requester or the expert may start the consultation")
        elif req.user.id != c.expert_id:  # complete, no_show
            raise Forbidden(f"only the expert may {action.replace('_', '-')} this consultation")
        if action == "accept":
            await _accept(session, req, c)
        elif action in ("decline", "cancel"):
            note = req.body.reason
            c.reason = note
        elif action == "complete":
            next_state(c.status, action)  # the state error comes first
            if (await report_states(session, [c.id])).get(c.id) != "signed":
                raise Conflict("sign the report before completing the consultation",
                               code="report_not_signed")
        apply_transition(c, action, req.user, note)
        if action in ("decline", "cancel"):
            await end_early(session, c)
        audit.record(session, req.user, action, "consultation", c.id, patient_id=c.patient_id,
                     ip=req.ip)
        return await _view(session, c, req.user)


async def _accept(session: AsyncSession, req: ApiRequest, c: Consultation) -> None:
    next_state(c.status, "accept")  # a clear 409 before any slot is touched
    body: AcceptIn | None = req.body
    wanted = body.slot_id if body else None
    if wanted and wanted != c.slot_id:
        slot = await _take_slot(session, wanted, req.user.id)
        await release_slot(session, c.slot_id)
        slot.consultation_id = c.id
        c.slot_id = slot.id
        c.deadline = max(c.deadline, slot.start)
    elif c.slot_id is None and c.kind in SLOT_REQUIRED_KINDS and c.urgency != "emergency":
        raise ValidationFailed(f"a {c.kind} consultation is accepted into one of your slots: "
                               "send slot_id", code="slot_required", details={"field": "slot_id"})
    c.expert_id = req.user.id


def _action_route(action: str, summary: str, body: type | None = None) -> None:
    path = f"/api/consultations/{{id}}/{action.replace('_', '-')}"

    async def handler(req: ApiRequest) -> ConsultationOut:
        return await _transition(req, action)

    handler.__name__ = f"{action}_consultation"
    router.route("POST", path, summary=summary, tag="consultations", body=body,  # type: ignore[arg-type]
                 response=ConsultationOut)(handler)


_action_route("accept", "Accept (the assigned expert or a queue specialist), optionally into "
              "one of the expert's slots", AcceptIn)
_action_route("decline", "Decline with a reason; the slot is freed", ReasonIn)
_action_route("cancel", "Cancel (the requester) with a reason; the slot is freed", ReasonIn)
_action_route("start", "Start the accepted consultation")
_action_route("no_show", "Record that the accepted consultation did not take place")
_action_route("complete", "Complete the consultation (its report must be signed)")


@router.route("POST", "/api/consultations/{id}/studies", summary="Share a DICOM study with the "
              "consultation", tag="consultations", body=StudyIn, response=ConsultationOut)
async def share_study(req: ApiRequest) -> ConsultationOut:
    body: StudyIn = req.body
    async with req.db.write() as session:
        c = await get_visible_consultation(session, req.user, req.path_id())
        if req.user.id not in (c.requester_id, c.expert_id):
            raise Forbidden("only the requester or the expert may share studies")
        if c.status in ("declined", "cancelled", "expired", "no_show"):
            raise Conflict(f'cannot share studies with a consultation in state "{c.status}"',
                           code="invalid_transition")
        await share_studies(session, req.user, c, [body.study_uid])
        await session.refresh(c, ["studies"])
        audit.record(session, req.user, "share_study", "consultation", c.id,
                     patient_id=c.patient_id, ip=req.ip, detail={"study_uid": body.study_uid})
        return await _view(session, c, req.user)
