"""The demo's consultations in every state, and the images shared with them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.dicom.demo import load_demo_studies
from yilian.server.clinic.consultations import apply_transition
from yilian.server.clinic.models import (
    Consultation,
    ConsultationEvent,
    ConsultationStudy,
    Patient,
    ReportVersion,
    Slot,
)
from yilian.server.clinic.scheduling import book_slot, release_slot
from yilian.server.clinic.workflow import deadline_for
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import Institution, User
from yilian.server.core.settings import Settings


async def load_studies(db: Database, settings: Settings,
                       consultations: dict[str, Consultation]) -> None:
    """The demo images, sent by the requesting doctors and shared with their consultations:
    the CT and the slide with the video consultation, the DR with the imaging request."""
    cases = {"ct": consultations["in_progress_video"], "dr": consultations["queued_imaging"],
             "wsi": consultations["in_progress_video"]}
    owners = {k: (c.requester_institution_id, c.requester_id) for k, c in cases.items()}
    stored = await load_demo_studies(db, settings, owners)
    async with db.write() as session:
        session.add_all(ConsultationStudy(consultation_id=c.id, study_instance_uid=stored[k],
                                          shared_by_id=c.requester_id)
                        for k, c in cases.items())


async def _free_slot(session: AsyncSession, expert: User, skip: int = 0) -> Slot:
    slots = (await session.execute(
        select(Slot).where(Slot.expert_id == expert.id, Slot.status == "free",
                           Slot.start > utcnow() + timedelta(hours=2))
        .order_by(Slot.start).offset(skip).limit(1))).scalars().all()
    return slots[0]


async def consultations(session: AsyncSession, users: dict[str, User],
                        patients: dict[str, Patient], inst: dict[str, Institution]
                        ) -> dict[str, Consultation]:
    """Consultations requested, queued, accepted, in progress, completed and declined.

    (The Guilin stroke case is a green-channel referral to the Yangshuo branch now, not a
    consultation waiting in a queue: see demo/green.py.)"""
    now = utcnow()
    village, township, expert = users["village"], users["township"], users["expert"]

    async def make(key: str, requester: User, patient: Patient, kind: str, urgency: str,
                   question: str, expert_user: User | None = None, slot: Slot | None = None,
                   specialty: str | None = None, target: Institution | None = None
                   ) -> Consultation:
        if slot is not None:
            assert expert_user is not None
            await session.run_sync(book_slot, slot.id, expert_user.id)
        c = Consultation(
            patient_id=patient.id, requester_id=requester.id,
            requester_institution_id=requester.institution_id, kind=kind, urgency=urgency,
            question=question, expert_id=expert_user.id if expert_user else None,
            slot_id=slot.id if slot else None, specialty=specialty,
            target_institution_id=target.id if target else None,
            deadline=deadline_for(urgency, now, slot.start if slot else None), status="requested",
            created_at=now, updated_at=now, events=[], studies=[])
        c.events.append(ConsultationEvent(from_status=None, to_status="requested",
                                          actor_id=requester.id, at=now))
        session.add(c)
        await session.flush()
        if slot is not None:
            slot.consultation_id = c.id
        made[key] = c
        return c

    made: dict[str, Consultation] = {}
    await make("requested_video", village, patients["li_guihua"], "video", "routine",
               "68-year-old woman, exertional chest tightness for 2 weeks, BP 165/95. "
               "ECG at the clinic shows ST depression in V4-V6. Is this angina, and should she "
               "be referred up?", expert, await _free_slot(session, expert, 0))
    await make("queued_imaging", township, patients["wang_xiumei"], "imaging", "urgent",
               "DR chest: opacity in the right lower zone? Please read.",
               specialty="radiology", target=inst["gdph"])
    accepted = await make("accepted_outpatient", village, patients["chen_dafu"], "outpatient",
                          "routine", "Follow-up of atrial fibrillation on warfarin; INR 3.4 "
                          "today. Dose adjustment?", expert, await _free_slot(session, expert, 1))
    apply_transition(accepted, "accept", expert)
    live = await make("in_progress_video", township, patients["liang_jinlong"], "video",
                      "urgent", "Post-MI patient with new ankle oedema and dyspnoea on exertion.",
                      expert, await _free_slot(session, expert, 2))
    apply_transition(live, "accept", expert)
    apply_transition(live, "start", township)
    done = await make("completed_video", village, patients["li_guihua"], "video", "routine",
                      "Hypertension poorly controlled on amlodipine 5 mg.", expert,
                      await _free_slot(session, expert, 3))
    for action, actor in (("accept", expert), ("start", village)):
        apply_transition(done, action, actor)
    session.add(ReportVersion(
        consultation_id=done.id, version=1, author_id=expert.id, created_at=now, updated_at=now,
        findings="BP 162/98 on video; no signs of heart failure; renal function normal (township "
                 "lab).",
        impression="Essential hypertension, grade 2, inadequately controlled.",
        recommendations="Increase amlodipine to 10 mg daily; add low-dose thiazide if above "
                        "140/90 in 4 weeks; home BP diary; village doctor follow-up weekly.",
        signed_at=now, signed_by_id=expert.id, signer_name=expert.display_name,
        signer_title=expert.title,
        signer_institution=inst["gdph"].local_name or inst["gdph"].name))
    apply_transition(done, "complete", expert)
    declined = await make("declined_video", township, patients["wang_xiumei"], "video", "routine",
                          "Knee pain for 3 months, X-ray shows joint space narrowing.",
                          users["county"], await _free_slot(session, users["county"], 0))
    reason = "Orthopaedics question: please book Dr. Xu Ming (orthopaedics) instead."
    apply_transition(declined, "decline", users["county"], reason)
    declined.reason = reason
    await session.run_sync(release_slot, declined.slot_id)
    await session.flush()
    return made
