"""The demo's green-channel (绿色通道) referrals, on the clinical clock:

- **Stroke at the Yangshuo branch** (Guilin alliance), five days before loading: Baisha Town
  Health Centre → Yangshuo County People's Hospital neurosurgery. Onset 08:20, request 09:02,
  accept 09:05, departure 09:14, door 09:48, CT 10:06, needle (thrombolysis) 10:30 (Beijing
  time): door-to-CT 18 min, door-to-needle 42 min, onset-to-needle 130 min. Completed two days
  later.
- **Chest pain in the Dianbai chain**: Shalang Town Central Health Centre → Dianbai District
  People's Hospital cardiology, during ``county``'s latest on-call shift that has room for it
  (the one the demo was loaded in, or 36 hours earlier): first contact → first ECG 6 min (the
  12-lead ECG is stored and shared with the referral), request → accept 2 min, door → cath-lab
  activation 9 min, door-to-balloon 68 min (target 90: met), first contact → balloon 135 min
  (target 120: missed, the transfer took 42 min). Arrived (the patient is in the CCU).
- **Night stroke at Dianbai**, three days before loading at 02:10: nobody on call accepted in
  five minutes, so it escalated to the head of neurology, who accepted at 02:18; door 03:02,
  CT 03:24, needle 03:57 (door-to-needle 55 min). Completed the next morning.
- **A stroke on its way now**: Shalang → Dianbai neurology, requested 14 minutes before loading
  and accepted 3 minutes later by whoever was on call: the inbox shows its clock running.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import Patient, Referral
from yilian.server.core.models import Institution, User
from yilian.server.demo.alliance import department
from yilian.server.demo.ecg import EcgPlan, plan_ecg
from yilian.server.demo.oncall import ZONE, Rosters
from yilian.server.demo.story import Point, Step, referral

M = timedelta(minutes=1)


def _local(day: date, hh_mm: str) -> datetime:
    h, m = (int(x) for x in hh_mm.split(":"))
    return datetime.combine(day, time(h, m), ZONE)


def green_channel(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
                  patients: dict[str, Patient], rosters: Rosters, now: datetime
                  ) -> tuple[dict[str, Referral], EcgPlan]:
    """The four green-channel referrals, and the chest-pain case's ECG to store."""
    made = {"yangshuo_stroke": _yangshuo_stroke(session, inst, users, patients, rosters, now)}
    made["chest_pain"], ecg = _chest_pain(session, inst, users, patients, rosters, now)
    made["night_stroke"] = _night_stroke(session, inst, users, patients, rosters, now)
    made["running_stroke"] = _running_stroke(session, inst, users, patients, rosters, now)
    return made, ecg


def _yangshuo_stroke(session: AsyncSession, inst: dict[str, Institution],
                     users: dict[str, User], patients: dict[str, Patient], rosters: Rosters,
                     now: datetime) -> Referral:
    dept = department(inst["yangshuo"], "neurosurgery")
    day = (now - timedelta(days=5)).astimezone(ZONE).date()

    def t(hh_mm: str) -> datetime:
        return _local(day, hh_mm)

    def on_call(hh_mm: str) -> User:
        return rosters.on_call(dept.id, t(hh_mm))

    done = t("10:00") + timedelta(days=2)
    return referral(
        session, patient=patients["mo_caixia"], direction="up", to=inst["yangshuo"],
        department=dept, requester=users["guilin_doctor"], green_channel="stroke",
        onset_at=t("08:20"), requested_at=t("09:02"),
        reason="Acute ischaemic stroke within the window: sudden right-sided weakness and "
               "slurred speech since 08:20. Thrombolysis candidate.",
        summary="63-year-old woman. NIHSS 9 (right hemiparesis, dysarthria). BP 168/94, "
                "glucose 6.8 mmol/L, no anticoagulants, no recent surgery. Last known well "
                "08:20 (her husband).",
        steps=[Step("accept", t("09:05"), on_call("09:05")),
               Step("depart", t("09:14"), users["guilin_doctor"],
                    "Baisha ambulance, nurse escort"),
               Step("arrive", t("09:48"), on_call("09:48")),
               Step("complete", done, rosters.on_call(dept.id, done),
                    "Alteplase given; NIHSS 3 at 24 h; to the stroke unit")],
        points=[Point("ct_done", t("10:06"), on_call("10:06")),
                Point("needle", t("10:30"), on_call("10:30"))])


def _chest_pain(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
                patients: dict[str, Patient], rosters: Rosters, now: datetime
                ) -> tuple[Referral, EcgPlan]:
    dept = department(inst["dianbai"], "cardiology")
    county, township = users["county"], users["township"]
    # The case runs from request (100 min into the shift) to balloon (122 min later), all
    # while ``county`` is on call, and ends at least 20 minutes before loading.
    shift = rosters.shift_of(dept.id, county, ending_before=now, lasting=242 * M)
    r = shift + 100 * M
    ecg_at = r - 7 * M
    plan = plan_ecg(taken_at=ecg_at, patient_name="Zhang^Dehai", patient_id="SL-2024-0233",
                    birth_date="19630417", sex="M",
                    institution_name="Shalang Town Central Health Centre",
                    institution_id=inst["shalang"].id, user_id=township.id)
    made = referral(
        session, patient=patients["zhang_dehai"], direction="up", to=inst["dianbai"],
        department=dept, requester=township, green_channel="chest_pain", onset_at=r - 58 * M,
        requested_at=r,
        reason="Acute inferior STEMI: ST elevation in II, III, aVF. For primary PCI.",
        summary="61-year-old man, crushing chest pain for 45 minutes, sweating. BP 102/64, "
                "HR 58. Aspirin 300 mg and ticagrelor 180 mg given at the health centre. "
                "12-lead ECG attached.",
        steps=[Step("accept", r + 2 * M, county),
               Step("depart", r + 12 * M, township, "120 ambulance with the township doctor"),
               Step("arrive", r + 54 * M, county)],
        points=[Point("first_contact", r - 13 * M, township),
                Point("first_ecg", ecg_at, township, source="ecg"),
                Point("cath_lab_activated", r + 63 * M, county),
                Point("balloon", r + 122 * M, county)],
        study_uids=[plan.study_uid])
    return made, plan


def _night_stroke(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
                  patients: dict[str, Patient], rosters: Rosters, now: datetime) -> Referral:
    dept = department(inst["dianbai"], "neurology")
    day = (now - timedelta(days=3)).astimezone(ZONE).date()

    def t(hh_mm: str) -> datetime:
        return _local(day, hh_mm)

    head, township = users["county_neurology"], users["township"]
    done = t("10:30")
    return referral(
        session, patient=patients["huang_guiying"], direction="up", to=inst["dianbai"],
        department=dept, requester=township, green_channel="stroke", onset_at=t("01:25"),
        requested_at=t("02:10"), escalated_at=t("02:15"),
        reason="Acute stroke: left hemiparesis and facial droop since 01:25 (woke her "
               "daughter). Thrombolysis candidate.",
        summary="77-year-old woman. NIHSS 11. BP 176/92, glucose 8.1 mmol/L. Hypertension on "
                "amlodipine; no anticoagulants.",
        steps=[Step("accept", t("02:18"), head, "Accepted after escalation"),
               Step("depart", t("02:25"), township),
               Step("arrive", t("03:02"), rosters.on_call(dept.id, t("03:02"))),
               Step("complete", done, rosters.on_call(dept.id, done),
                    "Thrombolysed; NIHSS 5 the next morning")],
        points=[Point("ct_done", t("03:24"), rosters.on_call(dept.id, t("03:24"))),
                Point("needle", t("03:57"), head)])


def _running_stroke(session: AsyncSession, inst: dict[str, Institution],
                    users: dict[str, User], patients: dict[str, Patient], rosters: Rosters,
                    now: datetime) -> Referral:
    dept = department(inst["dianbai"], "neurology")
    requested, accepted = now - 14 * M, now - 11 * M
    return referral(
        session, patient=patients["wu_yuzhen"], direction="up", to=inst["dianbai"],
        department=dept, requester=users["township"], green_channel="stroke",
        onset_at=now - 70 * M, requested_at=requested,
        reason="Acute stroke within the window: aphasia and right arm weakness. Thrombolysis "
               "candidate.",
        summary="73-year-old woman. NIHSS 7. BP 158/88, glucose 7.4 mmol/L. Atrial fibrillation, "
                "not anticoagulated.",
        steps=[Step("accept", accepted, rosters.on_call(dept.id, accepted),
                    "Dianbai ambulance sent; stroke team waiting at the door")])
