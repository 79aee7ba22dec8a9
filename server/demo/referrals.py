"""The demo's ordinary referrals (up in every state, down with follow-ups at the village
clinic), around the green-channel ones of demo/green.py.

Up: Li Guihua's angina workup waits to be accepted by Dianbai cardiology (with her remote
consultation's signed report); Liang Jinlong is on his way there; Wang Xiumei was turned back
by Maoming neurology to the district hospital first; Xu Dehua (Dianbai) waits for a bed at the
province hospital; Tang Xiulan's request in Guilin expired unanswered; Chen Dafu was admitted
with heart failure and discharged. Down to Shangtang Village Clinic: Zhong Jinfeng's stroke
rehabilitation (first follow-up done with an outcome, the next due in two days) and Chen Dafu's
chronic heart failure (follow-up overdue by three days).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.clinic.models import Consultation, FollowUp, Patient, Referral
from yilian.server.core.models import Institution, User
from yilian.server.demo.alliance import department
from yilian.server.demo.oncall import Rosters
from yilian.server.demo.story import Step, referral

H, D = timedelta(hours=1), timedelta(days=1)


def upward(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
           patients: dict[str, Patient], consultations: dict[str, Consultation],
           rosters: Rosters, now: datetime) -> dict[str, Referral]:
    """Ordinary upward referrals: requested, in transit, rejected, accepted, expired,
    completed."""
    cardio = department(inst["dianbai"], "cardiology")
    village, township, county = users["village"], users["township"], users["county"]
    made: dict[str, Referral] = {}
    made["requested"] = referral(
        session, patient=patients["li_guihua"], direction="up", to=inst["dianbai"],
        department=cardio, requester=village, requested_at=now - 3 * H,
        reason="Exertional chest tightness for 2 weeks with ST depression in V4-V6: exercise "
               "test or coronary CT angiography, please.",
        summary="68-year-old woman, hypertension on amlodipine 10 mg (remote consultation "
                "report attached). BP 158/92 today. No rest pain.",
        consultations=[consultations["completed_video"]])
    accepted_at = now - 4 * H - 40 * timedelta(minutes=1)
    made["in_transit"] = referral(
        session, patient=patients["liang_jinlong"], direction="up", to=inst["dianbai"],
        department=cardio, requester=township, requested_at=now - 5 * H,
        reason="Heart failure after MI: new ankle oedema and dyspnoea on exertion. Admission "
               "for echo and diuresis, as advised in the remote consultation.",
        summary="52-year-old man, anterior MI 8 months ago (PCI at Maoming). NYHA III, "
                "crackles at both bases, SpO2 94%.",
        steps=[Step("accept", accepted_at, rosters.on_call(cardio.id, accepted_at)),
               Step("depart", now - 35 * timedelta(minutes=1), township,
                    "Family car; the township centre phoned ahead")],
        consultations=[consultations["in_progress_video"]])
    made["rejected"] = referral(
        session, patient=patients["wang_xiumei"], direction="up", to=inst["maoming"],
        department=department(inst["maoming"], "neurology"), requester=township,
        requested_at=now - 6 * D,
        reason="Recurrent vertigo for 3 weeks. MRI and a neurologist's opinion.",
        summary="56-year-old woman, episodes of rotatory vertigo lasting minutes, no focal "
                "signs, BP 134/82.",
        steps=[Step("reject", now - 6 * D + 50 * timedelta(minutes=1), users["maoming_neurology"],
                    "No focal signs: Dianbai District neurology can see her first (alliance "
                    "pathway); we will take her if MRI is needed beyond their scope.")])
    made["accepted"] = referral(
        session, patient=patients["xu_dehua"], direction="up", to=inst["gdph"],
        department=department(inst["gdph"], "cardiology"), requester=county,
        requested_at=now - 2 * D,
        reason="Severe symptomatic aortic stenosis: evaluation for TAVI.",
        summary="67-year-old man, exertional syncope twice. Echo: AVA 0.7 cm², mean gradient "
                "52 mmHg, LVEF 55%. Creatinine 98 µmol/L.",
        steps=[Step("accept", now - 2 * D + 4 * H, users["expert"],
                    "Bed in the structural heart unit on Monday; bring the echo images")])
    made["expired"] = referral(
        session, patient=patients["tang_xiulan"], direction="up", to=inst["guilin"],
        department=department(inst["guilin"], "neurosurgery"), requester=users["guilin_doctor"],
        requested_at=now - 5 * D,
        reason="Chronic headache with a suspected meningioma on the county CT: neurosurgical "
               "opinion.",
        summary="65-year-old woman, headache for 4 months, no deficit.",
        steps=[Step("expire", now - 3 * D, None, "No answer before the deadline")])
    made["completed"] = referral(
        session, patient=patients["chen_dafu"], direction="up", to=inst["dianbai"],
        department=cardio, requester=village, requested_at=now - 19 * D,
        reason="Worsening breathlessness and leg oedema: decompensated heart failure.",
        summary="75-year-old man, atrial fibrillation on warfarin, weight up 4 kg in a week.",
        steps=[Step("accept", now - 19 * D + 40 * timedelta(minutes=1), county),
               Step("depart", now - 19 * D + 90 * timedelta(minutes=1), village),
               Step("arrive", now - 19 * D + 160 * timedelta(minutes=1), county),
               Step("complete", now - 12 * D, county, "Diuresed 5 kg; discharged home")])
    return made


async def downward(session: AsyncSession, inst: dict[str, Institution], users: dict[str, User],
             patients: dict[str, Patient], now: datetime
             ) -> tuple[dict[str, Referral], list[FollowUp]]:
    """Referrals down to the village clinic, with their follow-ups: one completed with an
    outcome, one due in two days, one overdue by three days."""
    village, shangtang = users["village"], inst["shangtang"]
    neuro, heart = users["county_neurology"], users["county"]
    rehab = referral(
        session, patient=patients["zhong_jinfeng"], direction="down", to=shangtang,
        department=None, requester=neuro, requested_at=now - 20 * D,
        reason="Rehabilitation after ischaemic stroke (left MCA): home exercises and secondary "
               "prevention.",
        summary="69-year-old woman, right hemiparesis improving (walks with a cane), mild "
                "dysarthria. Aspirin 100 mg, atorvastatin 20 mg, amlodipine 5 mg.",
        steps=[Step("accept", now - 20 * D + 3 * H, village),
               Step("depart", now - 18 * D, neuro, "Discharged home by family car"),
               Step("arrive", now - 18 * D + 2 * H, village),
               Step("complete", now - 18 * D + 2 * H + 10 * timedelta(minutes=1), village)])
    await session.flush()
    first_due = now - 11 * D
    follow_ups = [
        FollowUp(referral_id=rehab.id, patient_id=rehab.patient_id, institution_id=shangtang.id,
                 assigned_to_id=village.id, due_at=first_due, status="completed",
                 plan="Week 1 at home: BP, swallowing, falls, walking, medication adherence.",
                 outcome="BP 136/84. Walks 200 m with a cane, no falls. Swallowing normal. "
                         "Taking all three medicines; daughter supervises the exercises.",
                 completed_at=first_due + 3 * H, completed_by_id=village.id,
                 created_at=now - 20 * D + 3 * H),
        FollowUp(referral_id=rehab.id, patient_id=rehab.patient_id, institution_id=shangtang.id,
                 assigned_to_id=village.id, due_at=now + 2 * D, status="due",
                 plan="Week 4: BP, lipids at the township lab, Barthel index, mood.",
                 created_at=first_due + 3 * H)]
    heart_failure = referral(
        session, patient=patients["chen_dafu"], direction="down", to=shangtang,
        department=None, requester=heart, requested_at=now - 12 * D,
        reason="Chronic heart failure follow-up after discharge: weight, diuretic dose, INR.",
        summary="75-year-old man, HFrEF (LVEF 35%) and atrial fibrillation. Furosemide 40 mg, "
                "spironolactone 20 mg, bisoprolol 2.5 mg, warfarin (target INR 2-3). Dry "
                "weight 61 kg.",
        steps=[Step("accept", now - 12 * D + 2 * H, village),
               Step("depart", now - 10 * D, heart),
               Step("arrive", now - 10 * D + 90 * timedelta(minutes=1), village)])
    await session.flush()
    follow_ups.append(FollowUp(
        referral_id=heart_failure.id, patient_id=heart_failure.patient_id,
        institution_id=shangtang.id, assigned_to_id=village.id, due_at=now - 3 * D,
        status="due", created_at=now - 12 * D + 2 * H,
        plan="Day 7 at home: weight (dry weight 61 kg), ankle oedema, BP, HR, INR; halve "
             "furosemide if weight below 60 kg."))
    session.add_all(follow_ups)
    await session.flush()
    return {"rehab": rehab, "heart_failure": heart_failure}, follow_ups
