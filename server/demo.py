"""The demo alliance: real institutions from press reports, invented people, sample cases.

Institutions and arrangements follow shared/design/demo-alliance.md: the five-level
Guangdong chain (launched 2024) and the city-led Guilin alliance.
"""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.dicom.demo import load_demo_studies
from yilian.server.clinic.consultations import apply_transition
from yilian.server.clinic.models import (
    AvailabilityException,
    AvailabilityRule,
    Consultation,
    ConsultationEvent,
    ConsultationStudy,
    Patient,
    ReportVersion,
    Slot,
)
from yilian.server.clinic.scheduling import book_slot, extend_horizon, release_slot
from yilian.server.clinic.workflow import deadline_for
from yilian.server.core.auth import hash_password
from yilian.server.core.crypto import encrypt, mask_national_id
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import Alliance, AllianceMember, Department, Institution, User
from yilian.server.core.settings import Settings
from yilian.server.schema import migrate

logger = logging.getLogger(__name__)
DEMO_PASSWORD = "yilian-demo"

# key: (name, local name, level, parent key, departments [(name, specialty)])
INSTITUTIONS: list[tuple[str, str, str, str, str | None, list[tuple[str, str | None]]]] = [
    ("gdph", "Guangdong Provincial People's Hospital", "广东省人民医院", "province", None,
     [("Cardiology", "cardiology"), ("Neurosurgery", "neurosurgery"),
      ("Orthopaedics", "orthopaedics"), ("Radiology", "radiology"), ("Pathology", "pathology")]),
    ("maoming", "Maoming People's Hospital", "茂名市人民医院", "city", None,
     [("Radiology", "radiology"), ("Pathology", "pathology"), ("Neurology", "neurology")]),
    ("dianbai", "Dianbai District People's Hospital", "广东省人民医院粤西医院 / 电白区人民医院",
     "county", "gdph", [("Internal Medicine", "internal_medicine"), ("Radiology", "radiology"),
                        ("Emergency", "emergency")]),
    ("shalang", "Shalang Town Central Health Centre", "沙琅镇中心卫生院", "township", None,
     [("General Practice", "general_practice")]),
    ("shangtang", "Shangtang Village Clinic", "尚塘村卫生站", "village", None, []),
    ("guilin", "Guilin People's Hospital", "桂林市人民医院", "city", None,
     [("Neurosurgery", "neurosurgery"), ("Radiology", "radiology"), ("Cardiology", "cardiology")]),
    ("pingle", "Pingle County People's Hospital", "平乐县人民医院", "county", "guilin",
     [("Internal Medicine", "internal_medicine")]),
    ("xingan", "Xing'an County People's Hospital", "兴安县人民医院", "county", "guilin",
     [("Internal Medicine", "internal_medicine")]),
    ("yangshuo", "Yangshuo County People's Hospital", "阳朔县人民医院", "county", "guilin",
     [("Neurosurgery", "neurosurgery")]),
    ("baisha", "Baisha Town Health Centre, Yangshuo", "阳朔县白沙镇卫生院", "township", None,
     [("General Practice", "general_practice")]),
]

ALLIANCES = [
    ("Guangdong Five-Level Medical Alliance (省—市—区—镇—村)", "tight", None, "gdph",
     ["gdph", "maoming", "dianbai", "shalang", "shangtang"]),
    ("Guilin People's Hospital Medical Alliance", "tight", None, "guilin",
     ["guilin", "pingle", "xingan", "yangshuo", "baisha"]),
]

# username, display name, role, institution key, department specialty, specialties, title
USERS: list[tuple[str, str, str, str, str | None, list[str], str | None]] = [
    ("village", "Dr. Chen Liping (陈丽萍)", "village_doctor", "shangtang", None, [],
     "Village Doctor"),
    ("township", "Dr. Huang Zhiqiang (黄志强)", "township_doctor", "shalang", "general_practice",
     ["general_practice"], "Attending Physician"),
    ("county", "Dr. Lin Weiming (林伟明)", "specialist", "dianbai", "internal_medicine",
     ["internal_medicine", "cardiology"], "Associate Chief Physician"),
    ("county_radiology", "Dr. Liang Xiaoyan (梁晓燕)", "specialist", "dianbai", "radiology",
     ["radiology"], "Attending Radiologist"),
    ("expert", "Prof. Zhou Jianhua (周建华)", "specialist", "gdph", "cardiology", ["cardiology"],
     "Chief Physician"),
    ("gdph_neurosurgery", "Prof. He Guodong (何国栋)", "specialist", "gdph", "neurosurgery",
     ["neurosurgery"], "Chief Physician"),
    ("gdph_orthopaedics", "Dr. Xu Ming (徐明)", "specialist", "gdph", "orthopaedics",
     ["orthopaedics"], "Associate Chief Physician"),
    ("gdph_radiology", "Prof. Luo Hui (罗慧)", "specialist", "gdph", "radiology", ["radiology"],
     "Chief Radiologist"),
    ("gdph_pathology", "Prof. Tan Yun (谭云)", "specialist", "gdph", "pathology", ["pathology"],
     "Chief Pathologist"),
    ("maoming_radiology", "Dr. Wu Jing (吴静)", "specialist", "maoming", "radiology",
     ["radiology"], "Associate Chief Radiologist"),
    ("maoming_neurology", "Dr. Zheng Hao (郑浩)", "specialist", "maoming", "neurology",
     ["neurology"], "Chief Physician"),
    ("coordinator", "Ms. Feng Yue (冯悦)", "coordinator", "gdph", None, [],
     "Alliance Coordinator"),
    ("admin", "System Administrator", "admin", "gdph", None, [], None),
    ("guilin_doctor", "Dr. Mo Lihua (莫丽华)", "township_doctor", "baisha", "general_practice",
     ["general_practice"], "Attending Physician"),
    ("guilin_neurosurgery", "Prof. Qin Bo (覃波)", "specialist", "guilin", "neurosurgery",
     ["neurosurgery"], "Chief Physician"),
    ("guilin_radiology", "Dr. Lu Fang (陆芳)", "specialist", "guilin", "radiology", ["radiology"],
     "Attending Radiologist"),
    ("yangshuo_neurosurgery", "Dr. Wei Tao (韦涛)", "specialist", "yangshuo", "neurosurgery",
     ["neurosurgery"], "Attending Physician"),
    ("guilin_coordinator", "Mr. Tang Jun (唐军)", "coordinator", "guilin", None, [],
     "Alliance Coordinator"),
]

PATIENTS = [
    # institution, name, sex, birth date, national id
    ("shangtang", "Li Guihua (李桂花)", "female", "1956-03-14", "440904195603140025"),
    ("shangtang", "Chen Dafu (陈大福)", "male", "1949-11-02", "440904194911020031"),
    ("shalang", "Wang Xiumei (王秀梅)", "female", "1968-07-21", "440904196807210047"),
    ("shalang", "Liang Jinlong (梁金龙)", "male", "1972-01-30", "44090419720130005X"),
    ("baisha", "Mo Caixia (莫彩霞)", "female", "1961-05-09", "450321196105090027"),
]

WEEKLY = [(d, "09:00", "12:00") for d in range(5)] + [(d, "14:30", "17:00") for d in range(5)]


async def demo_loaded(db: Database) -> bool:
    """Whether the demo alliance is already in this database."""
    async with db.read() as session:
        return bool((await session.execute(select(func.count(Institution.id)))).scalar())


async def prepare_demo(settings: Settings, *, reset: bool = False) -> None:
    """Create (or reuse) the data directory and load the demo alliance once."""
    if reset and settings.data_dir.exists() and not settings.database_url:
        shutil.rmtree(settings.data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        await migrate(db)
        if await demo_loaded(db):
            logger.info("demo data already present in %s", settings.data_dir)
            return
        await load_demo(db, settings)
    finally:
        await db.close()


async def load_demo(db: Database, settings: Settings) -> dict[str, Any]:
    """Load institutions, alliances, people, availability and sample consultations."""
    password_hash = hash_password(DEMO_PASSWORD)
    async with db.write() as session:
        inst = await _institutions(session)
        await _alliances(session, inst)
        users = await _users(session, inst, password_hash)
        await _availability(session, users, inst, settings.clinic.slot_horizon_days)
        patients = _patients(session, inst, users, settings.secret_key)
        await session.flush()
        consultations = await _consultations(session, users, patients, inst)
    await _load_demo_studies(db, settings, consultations)
    logger.info("demo alliance loaded: %d institutions, %d users", len(inst), len(users))
    return {"institutions": inst, "users": users, "patients": patients,
            "consultations": consultations}


async def _load_demo_studies(db: Database, settings: Settings,
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


async def _institutions(session: AsyncSession) -> dict[str, Institution]:
    out: dict[str, Institution] = {}
    for key, name, local, level, parent, depts in INSTITUTIONS:
        i = Institution(name=name, local_name=local, level=level,
                        parent_id=out[parent].id if parent else None)
        i.departments = [Department(name=d, specialty=s) for d, s in depts]
        session.add(i)
        await session.flush()
        out[key] = i
    return out


async def _alliances(session: AsyncSession, inst: dict[str, Institution]) -> None:
    for name, kind, specialty, lead, members in ALLIANCES:
        a = Alliance(name=name, kind=kind, specialty=specialty,
                     lead_institution_id=inst[lead].id)
        a.members = [AllianceMember(institution_id=inst[m].id) for m in members]
        session.add(a)
    await session.flush()


async def _users(session: AsyncSession, inst: dict[str, Institution], password_hash: str
                 ) -> dict[str, User]:
    out: dict[str, User] = {}
    for username, display, role, ikey, dept_specialty, specialties, title in USERS:
        institution = inst[ikey]
        dept = next((d for d in institution.departments if d.specialty == dept_specialty), None)
        u = User(username=username, display_name=display, password_hash=password_hash, role=role,
                 institution_id=institution.id, department_id=dept.id if dept else None,
                 specialties=specialties, title=title)
        session.add(u)
        out[username] = u
    await session.flush()
    return out


async def _availability(session: AsyncSession, users: dict[str, User],
                        inst: dict[str, Institution], horizon_days: int) -> None:
    now = utcnow()
    for u in users.values():
        if u.role != "specialist":
            continue
        session.add_all(AvailabilityRule(expert_id=u.id, weekday=d, start_time=s, end_time=e,
                                         slot_minutes=30, timezone="Asia/Shanghai")
                        for d, s, e in WEEKLY)
    # The province hospital's placed specialists sit at Dianbai District one day a week (坐诊).
    for username in ("gdph_neurosurgery", "gdph_orthopaedics"):
        day = (now + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
        session.add(AvailabilityException(
            expert_id=users[username].id, kind="onsite", start=day, end=day + timedelta(days=1),
            institution_id=inst["dianbai"].id, note="On-site rotation at Dianbai District"))
    session.add(AvailabilityException(
        expert_id=users["expert"].id, kind="leave", start=now + timedelta(days=10),
        end=now + timedelta(days=12), note="Academic conference"))
    await session.flush()
    for u in users.values():
        if u.role == "specialist":
            await extend_horizon(session, u.id, horizon_days)


def _patients(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
              secret: str) -> list[Patient]:
    from datetime import date

    creator = {"shangtang": "village", "shalang": "township", "baisha": "guilin_doctor"}
    out = []
    for ikey, name, sex, born, nid in PATIENTS:
        p = Patient(institution_id=inst[ikey].id, name=name, sex=sex,
                    birth_date=date.fromisoformat(born),
                    national_id_encrypted=encrypt(secret, nid),
                    national_id_masked=mask_national_id(nid), phone="138 0000 0000",
                    created_by_id=users[creator[ikey]].id)
        session.add(p)
        out.append(p)
    return out


async def _free_slot(session: AsyncSession, expert: User, skip: int = 0) -> Slot:
    slots = (await session.execute(
        select(Slot).where(Slot.expert_id == expert.id, Slot.status == "free",
                           Slot.start > utcnow() + timedelta(hours=2))
        .order_by(Slot.start).offset(skip).limit(1))).scalars().all()
    return slots[0]


async def _consultations(session: AsyncSession, users: dict[str, User], patients: list[Patient],
                         inst: dict[str, Institution]) -> dict[str, Consultation]:
    now = utcnow()
    village, township, expert = users["village"], users["township"], users["expert"]

    async def make(key: str, requester: User, patient: Patient, kind: str, urgency: str,
                   question: str, expert_user: User | None = None, slot: Slot | None = None,
                   specialty: str | None = None, target: Institution | None = None
                   ) -> Consultation:
        if slot is not None:
            assert expert_user is not None
            await book_slot(session, slot.id, expert_user.id)
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
    await make("requested_video", village, patients[0], "video", "routine",
               "68-year-old woman, exertional chest tightness for 2 weeks, BP 165/95. "
               "ECG at the clinic shows ST depression in V4-V6. Is this angina, and should she "
               "be referred up?", expert, await _free_slot(session, expert, 0))
    await make("queued_imaging", township, patients[2], "imaging", "urgent",
               "DR chest: opacity in the right lower zone? Please read.",
               specialty="radiology", target=inst["gdph"])
    accepted = await make("accepted_outpatient", village, patients[1], "outpatient", "routine",
                          "Follow-up of atrial fibrillation on warfarin; INR 3.4 today. "
                          "Dose adjustment?", expert, await _free_slot(session, expert, 1))
    apply_transition(accepted, "accept", expert)
    live = await make("in_progress_video", township, patients[3], "video", "urgent",
                      "Post-MI patient with new ankle oedema and dyspnoea on exertion.", expert,
                      await _free_slot(session, expert, 2))
    apply_transition(live, "accept", expert)
    apply_transition(live, "start", township)
    done = await make("completed_video", village, patients[0], "video", "routine",
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
    declined = await make("declined_video", township, patients[2], "video", "routine",
                          "Knee pain for 3 months, X-ray shows joint space narrowing.",
                          users["county"], await _free_slot(session, users["county"], 0))
    reason = "Orthopaedics question: please book Dr. Xu Ming (orthopaedics) instead."
    apply_transition(declined, "decline", users["county"], reason)
    declined.reason = reason
    await release_slot(session, declined.slot_id)
    await make("guilin_queue", users["guilin_doctor"], patients[4], "video", "emergency",
               "Sudden right-sided weakness and slurred speech 90 minutes ago. NIHSS 9. "
               "Thrombolysis candidate?", specialty="neurosurgery", target=inst["guilin"])
    await session.flush()
    return made
