"""The consultation service: request, list, read, move through the workflow, share studies.

Each public function is one thing a user does; the HTTP routes parse, call one of these, and
return what it returns. The rules themselves are in ``workflow`` (states, transitions, who may
act), ``access`` (who may see) and ``scheduling`` (slots).

The changes (request, accept, decline, ...) are synchronous functions of one session, run by
``Database.write_sync``: on SQLite each holds the write lock for a millisecond or two on the
event loop's thread, instead of a hop to the driver's thread per statement with every other
request of the loop run in between (what made bookings queue at a busy hour)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, case, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from yilian.server.clinic import notices
from yilian.server.clinic.access import (
    can_see_consultation,
    consultation_filter,
    get_visible_consultation,
    is_participant,
)
from yilian.server.clinic.models import (
    Consultation,
    ConsultationEvent,
    ConsultationStudy,
    Patient,
    ReportVersion,
    Slot,
)
from yilian.server.clinic.notices import Person
from yilian.server.clinic.ports import ChatLog, StudyCatalog
from yilian.server.clinic.scheduling import (
    book_slot,
    guard_booking,
    release_slot,
    release_slot_with,
)
from yilian.server.clinic.schemas import (
    ChatMessageOut,
    ConsultationIn,
    ConsultationOut,
    ConsultationsQuery,
    ConsultationWithChatOut,
    PatientSummary,
    SlotOut,
)
from yilian.server.clinic.sharing import check_studies, share_studies
from yilian.server.clinic.views import (
    consultation_view,
    consultation_views,
)
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
from yilian.server.core.db import Database, by_id, utcnow
from yilian.server.core.errors import Conflict, Forbidden, NotFound, SlotTaken, ValidationFailed
from yilian.server.core.models import Institution, User
from yilian.server.core.writes import Changed, NotApplied, Writes, autocommit, transient


def apply_transition(
    c: Consultation, action: str, actor: User | None, note: str | None = None
) -> ConsultationEvent:
    """Move ``c`` by ``action`` (raising InvalidTransition) and record who and when."""
    event = transition(c, action, actor, note)
    c.events.append(event)
    return event


def transition(c: Consultation, action: str, actor: User | None,
               note: str | None = None) -> ConsultationEvent:
    """Move ``c`` by ``action`` (raising InvalidTransition); the event that records it, for the
    caller to store."""
    new = next_state(c.status, action)
    event = transient(ConsultationEvent, {
        "consultation_id": c.id, "from_status": c.status, "to_status": new,
        "actor_id": actor.id if actor else None, "at": utcnow(), "note": note})
    c.status = new
    c.updated_at = event.at
    return event


async def expire_overdue(db: Database) -> int:
    """Expire requests nobody accepted before their deadline; returns how many."""
    return await db.write_sync(_expire_overdue)


def _expire_overdue(session: Session) -> int:
    now = utcnow()
    overdue = session.execute(
        # locked: another process's sweep or an accept that commits first is not
        # overwritten (PostgreSQL re-checks the status once the lock is had)
        select(Consultation).where(
            Consultation.status == "requested", Consultation.deadline < now
        ).with_for_update()
    ).scalars().all()
    for c in overdue:
        apply_transition(c, "expire", None, "nobody accepted before the deadline")
        release_slot(session, c.slot_id)  # it will not take place
        notices.expired(session, c)
    return len(overdue)


def _take_slot(session: Session, slot_id: int, expert_id: int, holder: int) -> SlotOut:
    """Book a slot for the consultation ``holder``, or raise 409 ``slot_taken`` / 422."""
    booked = book_slot(session, slot_id, expert_id, holder)
    if booked is not None:
        # The slot as it now is, without a SELECT (the UPDATE returned its times).
        return SlotOut(id=slot_id, start=booked.start, end=booked.end, status="booked")
    raise _slot_refusal(session, slot_id, expert_id)


def _slot_refusal(session: Session, slot_id: int, expert_id: int) -> Exception:
    """Why the expert's slot could not be booked: 409 ``slot_taken`` or ``slot_unavailable``,
    422 if it is not theirs."""
    slot = by_id(session, Slot, slot_id)
    if slot is None or slot.expert_id != expert_id:
        return _not_the_experts(slot_id, expert_id)
    if slot.status == "booked":
        return SlotTaken(f"slot {slot_id} is already booked", details={"slot_id": slot_id})
    return Conflict(f"slot {slot_id} cannot be booked (it is {slot.status} or in the past)",
                   code="slot_unavailable", details={"slot_id": slot_id, "status": slot.status})


def _not_the_experts(slot_id: int, expert_id: int) -> ValidationFailed:
    return ValidationFailed(f"expert {expert_id} has no slot {slot_id}",
                            details={"field": "slot_id"})


class Parties(NamedTuple):
    """What :func:`check_request` found: the patient, the named expert, the requester's
    institution (its name and local name, for the expert's notice), the start of the
    slot asked for (not yet booked), and the new consultation's number if asked for."""

    patient: PatientSummary
    expert: Person | None
    place: tuple[str, str]
    slot_start: datetime | None
    new_id: int | None


def check_request(session: Session, user: User, body: ConsultationIn, *,
                  number: bool = False) -> Parties:
    """The request's patient and expert once the request is one this user may make (else
    4xx): one statement for the patient, the expert, the requester's institution and the
    queue's, and with ``number`` the new consultation's id (PostgreSQL: the next of its
    sequence; SQLite: one past the largest, the write transaction holding the write lock)."""
    require_clinical(user, "request consultations")
    if body.slot_id and not body.expert_id:
        raise ValidationFailed("a slot_id needs the expert_id it belongs to",
                               details={"field": "slot_id"})
    if not body.expert_id and not (body.specialty or body.target_institution_id):
        raise ValidationFailed("name an expert_id, or a specialty and/or target_institution_id "
                               "queue", details={"field": "expert_id"})
    conn = session.connection()
    stmt = _PARTIES if not number else (
        _PARTIES_NUMBERED_PG if conn.dialect.name == "postgresql" else _PARTIES_NUMBERED)
    row = conn.execute(stmt, {
        "patient": body.patient_id, "expert": body.expert_id, "place": user.institution_id,
        "target": body.target_institution_id, "slot": body.slot_id}).first()
    if row is None or row.institution_id != user.institution_id:
        raise NotFound(f"no patient {body.patient_id} at your institution",
                       details={"field": "patient_id"})
    expert = None
    if body.expert_id:
        if row.expert_id is None or row.expert_role != "specialist" or not row.expert_active:
            raise ValidationFailed(f"no expert {body.expert_id}", details={"field": "expert_id"})
        if row.expert_id == user.id:
            raise ValidationFailed("you cannot request a consultation with yourself",
                                   details={"field": "expert_id"})
        expert = Person(row.expert_id, row.expert_name, row.expert_locale, row.expert_active)
    if body.target_institution_id and row.target_id is None:
        raise ValidationFailed(f"no institution {body.target_institution_id}",
                               details={"field": "target_institution_id"})
    if body.slot_id and body.expert_id and row.slot_expert_id != body.expert_id:
        raise _not_the_experts(body.slot_id, body.expert_id)
    patient = PatientSummary(id=row.id, name=row.name, sex=row.sex, birth_date=row.birth_date)
    return Parties(patient, expert, (row.place_name or "", row.place_local or row.place_name or ""),
                   row.slot_start, row.new_id if number else None)


async def shareable_studies(db: Database, catalog: StudyCatalog, user: User,
                            body: ConsultationIn) -> list[str]:
    """The studies a request shares, each checked (``sharing.check_studies``), before its
    transaction: the image index is asked through the async catalog. The request itself is
    checked first, so a refused request answers as it would without studies."""
    if not body.study_uids:
        return []
    async with db.read() as session:
        await session.run_sync(check_request, user, body)
        return await check_studies(session, catalog, user, body.patient_id, body.study_uids)


def create(session: Session, user: User, body: ConsultationIn, study_uids: list[str],
           ip: str | None) -> ConsultationOut:
    """Request a consultation with an expert (in one of their slots) or a specialty queue,
    sharing ``study_uids`` (checked by :func:`shareable_studies`).

    One read (the parties, and the new consultation's number), then the request, its first
    event, its studies, the notification and the slot's booking as one ``Writes`` batch: on
    PostgreSQL one statement (``Database.write_fused``), which books the slot only if it is
    still free and writes nothing otherwise."""
    patient, expert, place, slot_start, new_id = check_request(session, user, body, number=True)
    now = utcnow()
    # A transient Consultation (never in the session): the notice's text and the view.
    c = transient(Consultation, {
        "id": new_id, "patient_id": patient.id, "requester_id": user.id,
        "requester_institution_id": user.institution_id, "kind": body.kind,
        "urgency": body.urgency, "question": body.question, "expert_id": body.expert_id,
        "slot_id": body.slot_id, "specialty": body.specialty,
        "target_institution_id": body.target_institution_id,
        "deadline": deadline_for(body.urgency, now, slot_start),
        "status": "requested", "reason": None, "created_at": now, "updated_at": now})
    writes = Writes()
    writes.insert(_CONSULTATIONS, {col: getattr(c, col) for col in _CONSULTATION_KEYS})
    event = transient(ConsultationEvent, {
        "consultation_id": c.id, "from_status": None, "to_status": "requested",
        "actor_id": user.id, "at": now, "note": None})
    writes.insert(_EVENTS, {col: getattr(event, col) for col in _EVENT_COLUMNS})
    for uid in study_uids:
        writes.insert(_STUDIES, {"consultation_id": c.id, "study_instance_uid": uid,
                                 "shared_by_id": user.id, "shared_at": now})
    notices.requested(session, c, user, expert=expert, place=place, writes=writes)
    if body.slot_id and body.expert_id:
        guard_booking(writes, body.slot_id, body.expert_id, c.id)
    try:
        booked = writes.run(session.connection())
    except NotApplied:
        assert body.slot_id and body.expert_id
        raise _slot_refusal(session, body.slot_id, body.expert_id) from None
    slot = (SlotOut(id=body.slot_id, start=booked[0][0], end=booked[0][1], status="booked")
            if booked and body.slot_id else None)
    audit.record(session, user, "create", "consultation", c.id, patient_id=c.patient_id, ip=ip)
    names = {user.id: user.display_name} | ({expert.id: expert.display_name} if expert else {})
    return consultation_view(c, patient, slot, [event], study_uids, "none", names)


_CONSULTATIONS = cast(Table, Consultation.__table__)
_EVENTS = cast(Table, ConsultationEvent.__table__)
_STUDIES = cast(Table, ConsultationStudy.__table__)
_EVENT_COLUMNS = [col.key for col in _EVENTS.columns if col.key != "id"]
_SLOTS = cast(Table, Slot.__table__)
_PATIENTS = cast(Table, Patient.__table__)
# What check_request reads, in one statement: each outer join matches one row or none.
_EXPERT = cast(Table, User.__table__).alias("expert")
_PLACE = cast(Table, Institution.__table__).alias("place")
_TARGET = cast(Table, Institution.__table__).alias("target")
_PARTIES = (
    select(_PATIENTS.c.id, _PATIENTS.c.institution_id, _PATIENTS.c.name, _PATIENTS.c.sex,
           _PATIENTS.c.birth_date, _EXPERT.c.id.label("expert_id"),
           _EXPERT.c.role.label("expert_role"), _EXPERT.c.active.label("expert_active"),
           _EXPERT.c.display_name.label("expert_name"), _EXPERT.c.locale.label("expert_locale"),
           _PLACE.c.name.label("place_name"), _PLACE.c.local_name.label("place_local"),
           _TARGET.c.id.label("target_id"), _SLOTS.c.expert_id.label("slot_expert_id"),
           _SLOTS.c.start.label("slot_start"))
    .select_from(_PATIENTS)
    .outerjoin(_EXPERT, _EXPERT.c.id == bindparam("expert"))
    .outerjoin(_PLACE, _PLACE.c.id == bindparam("place"))
    .outerjoin(_TARGET, _TARGET.c.id == bindparam("target"))
    .outerjoin(_SLOTS, _SLOTS.c.id == bindparam("slot"))
    .where(_PATIENTS.c.id == bindparam("patient")))
_PARTIES_NUMBERED_PG = _PARTIES.add_columns(
    func.nextval(func.pg_get_serial_sequence("consultations", "id")).label("new_id"))
_PARTIES_NUMBERED = _PARTIES.add_columns(
    select(func.coalesce(func.max(_CONSULTATIONS.c.id), 0) + 1).scalar_subquery()
    .label("new_id"))

# What ``act`` reads and writes, built once.
_CONSULTATION_KEYS = [col.key for col in _CONSULTATIONS.columns]
_REQUESTER = cast(Table, User.__table__).alias("requester")
_ASSIGNED = cast(Table, User.__table__).alias("assigned")
_ACTOR = cast(Table, User.__table__).alias("actor")
_REPORT_STATUS = (select(case((ReportVersion.signed_at.is_(None), "draft"), else_="signed"))
                  .where(ReportVersion.consultation_id == _CONSULTATIONS.c.id)
                  .order_by(ReportVersion.version.desc()).limit(1).scalar_subquery())
#: The consultation with its patient, slot, requester, expert, report state and whether it
#: has studies. (Its history is a statement of its own: joined here, PostgreSQL took twice as
#: long to plan the one statement as the two.)
_ACT_ROW = (
    select(*_CONSULTATIONS.columns,
           _PATIENTS.c.name.label("patient_name"), _PATIENTS.c.sex.label("patient_sex"),
           _PATIENTS.c.birth_date.label("patient_birth_date"),
           _SLOTS.c.start.label("slot_start"), _SLOTS.c.end.label("slot_end"),
           _SLOTS.c.status.label("slot_status"),
           _REQUESTER.c.display_name.label("requester_name"),
           _REQUESTER.c.locale.label("requester_locale"),
           _REQUESTER.c.active.label("requester_active"),
           _ASSIGNED.c.display_name.label("expert_name"),
           _ASSIGNED.c.locale.label("expert_locale"),
           _ASSIGNED.c.active.label("expert_active"),
           _REPORT_STATUS.label("report_status"),
           exists().where(_STUDIES.c.consultation_id == _CONSULTATIONS.c.id).label("studies"))
    .join(_PATIENTS, _PATIENTS.c.id == _CONSULTATIONS.c.patient_id)
    .join(_REQUESTER, _REQUESTER.c.id == _CONSULTATIONS.c.requester_id)
    .outerjoin(_ASSIGNED, _ASSIGNED.c.id == _CONSULTATIONS.c.expert_id)
    .outerjoin(_SLOTS, _SLOTS.c.id == _CONSULTATIONS.c.slot_id)
    .where(_CONSULTATIONS.c.id == bindparam("id")))
#: Its history, the oldest first, each event with its actor's name.
_HISTORY = (select(*(_EVENTS.c[key] for key in _EVENT_COLUMNS),
                   _ACTOR.c.display_name.label("actor_name"))
            .outerjoin(_ACTOR, _ACTOR.c.id == _EVENTS.c.actor_id)
            .where(_EVENTS.c.consultation_id == bindparam("id")).order_by(_EVENTS.c.id))
#: The same, the consultation locked until the transaction ends (``act`` in a transaction).
_ACT_ROW_LOCKED = _ACT_ROW.with_for_update(of=_CONSULTATIONS)
#: What an action may change (parameters named b_<column>: not like the columns); the guard
#: of its ``Writes``, in a transaction (the row locked as it was read).
_CHANGING = ("status", "updated_at", "expert_id", "slot_id", "deadline", "reason")
_UPDATE_CONSULTATION = (update(_CONSULTATIONS)
                        .where(_CONSULTATIONS.c.id == bindparam("b_id"))
                        .values({key: bindparam(f"b_{key}") for key in _CHANGING})
                        .returning(_CONSULTATIONS.c.id))
#: The same without a transaction (PostgreSQL, ``Database.write_fused``): only if the row is
#: still as it was read (its state and the time of its last change).
_UPDATE_UNCHANGED_CONSULTATION = _UPDATE_CONSULTATION.where(
    _CONSULTATIONS.c.status == bindparam("b_seen_status"),
    _CONSULTATIONS.c.updated_at == bindparam("b_seen_at"))
_STUDY_UIDS = (select(_STUDIES.c.study_instance_uid)
               .where(_STUDIES.c.consultation_id == bindparam("id"))
               .order_by(_STUDIES.c.shared_at))


async def _view(session: AsyncSession, c: Consultation, viewer: User) -> ConsultationOut:
    return (await consultation_views(session, [c], viewer))[0]


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


async def take_action(db: Database, user: User, consultation_id: int, action: str, *,
                      slot_id: int | None = None, reason: str | None = None,
                      ip: str | None = None) -> ConsultationOut:
    """:func:`act` as one write: its change is one statement (``Database.write_fused``),
    except an accept into another slot (two guards, the consultation and the new slot: that
    takes a transaction)."""
    write = db.write_sync if slot_id else db.write_fused
    return await write(lambda session: act(session, user, consultation_id, action,
                                           slot_id=slot_id, reason=reason, ip=ip))


def act(session: Session, user: User, consultation_id: int, action: str, *,
        slot_id: int | None = None, reason: str | None = None,
        ip: str | None = None) -> ConsultationOut:
    """Take ``action`` (accept, decline, cancel, start, no_show, complete) on a consultation.

    SQLAlchemy Core, not the ORM: one SELECT brings the consultation with its patient, slot,
    requester, expert, report state and whether it has studies, one more its history (and
    one its studies, if any); the change is one ``Writes`` batch: the UPDATE (guarded: the row
    is still as read, else :class:`Changed` and the action runs again on what is there now),
    the event, the notification and a freed slot. In a transaction the row is locked as it is
    read. The Consultation object is a transient copy of its row, never flushed."""
    require_clinical(user, "open consultations")
    conn = session.connection()  # Core statements: none of the ORM session's execute layer
    locked = not autocommit(conn)
    row = conn.execute(_ACT_ROW_LOCKED if locked else _ACT_ROW,
                       {"id": consultation_id}).one_or_none()
    if row is None:
        raise NotFound(f"no consultation {consultation_id}")
    c = transient(Consultation, {key: row[i] for i, key in enumerate(_CONSULTATION_KEYS)})
    if not can_see_consultation(user, c):
        raise NotFound(f"no consultation {consultation_id}")
    # A specialist who sees an unassigned request sees it through their queue.
    reaches_queue = user.role == "specialist"
    if not may_act(action, user.id, c.requester_id, c.expert_id, reaches_queue):
        raise Forbidden(actor_refusal(action))
    next_state(c.status, action)  # a clear 409 before anything is touched
    history = conn.execute(_HISTORY, {"id": c.id}).all()  # as it was: the new event follows
    seen = {"b_id": c.id} if locked else {
        "b_id": c.id, "b_seen_status": c.status, "b_seen_at": c.updated_at}
    extra = row._mapping
    slot = (SlotOut(id=c.slot_id, start=extra["slot_start"], end=extra["slot_end"],
                    status=extra["slot_status"]) if c.slot_id else None)
    expert = (Person(c.expert_id, extra["expert_name"], extra["expert_locale"],
                     extra["expert_active"]) if c.expert_id else None)
    if action == "accept":
        slot = _accept(session, user, c, slot_id, locked) or slot
    elif action in ("decline", "cancel"):
        c.reason = reason
    elif action == "complete" and extra["report_status"] != "signed":
        raise Conflict("sign the report before completing the consultation",
                       code="report_not_signed")
    event = transition(c, action, user, reason if action in ("decline", "cancel") else None)
    writes = Writes()
    writes.guard(_UPDATE_CONSULTATION if locked else _UPDATE_UNCHANGED_CONSULTATION,
                 seen | {f"b_{key}": getattr(c, key) for key in _CHANGING})
    writes.insert(_EVENTS, {col: getattr(event, col) for col in _EVENT_COLUMNS})
    if c.status in CALLED_OFF and c.slot_id is not None:
        release_slot_with(writes, c.slot_id)  # it will not take place
        slot = (slot.model_copy(update={"status": "free"})
                if slot is not None and slot.status == "booked" else slot)
    requester = Person(c.requester_id, extra["requester_name"], extra["requester_locale"],
                       extra["requester_active"])
    notices.answered(session, c, user, action, reason, requester=requester, expert=expert,
                     writes=writes)
    try:
        writes.run(conn)
    except NotApplied:
        raise Changed() from None
    audit.record(session, user, action, "consultation", c.id, patient_id=c.patient_id, ip=ip)
    events = [transient(ConsultationEvent, {key: h._mapping[key] for key in _EVENT_COLUMNS})
              for h in history] + [event]
    names = {h.actor_id: h.actor_name for h in history if h.actor_id is not None}
    names |= {user.id: user.display_name, c.requester_id: requester.display_name}
    if expert is not None:
        names[expert.id] = expert.display_name
    patient = PatientSummary(id=c.patient_id, name=extra["patient_name"],
                             sex=extra["patient_sex"], birth_date=extra["patient_birth_date"])
    study_uids = (list(conn.execute(_STUDY_UIDS, {"id": c.id}).scalars())
                  if extra["studies"] else [])
    return consultation_view(c, patient, slot, events, study_uids,
                             extra["report_status"] or "none", names)


def _accept(session: Session, user: User, c: Consultation, wanted: int | None,
            locked: bool) -> SlotOut | None:
    """Assign the consultation to its expert, moving it to the slot ``wanted`` (then returned:
    booked at once, which takes the transaction ``locked`` says the caller holds)."""
    if wanted and wanted != c.slot_id:
        if not locked:
            raise RuntimeError("moving a consultation to another slot needs a transaction")
        slot = _take_slot(session, wanted, user.id, c.id)
        release_slot(session, c.slot_id)
        c.slot_id = slot.id
        c.deadline = max(c.deadline, slot.start)
        c.expert_id = user.id
        return slot
    if c.slot_id is None and c.kind in SLOT_REQUIRED_KINDS and c.urgency != "emergency":
        raise ValidationFailed(f"a {c.kind} consultation is accepted into one of your slots: "
                               "send slot_id", code="slot_required", details={"field": "slot_id"})
    c.expert_id = user.id
    return None


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
