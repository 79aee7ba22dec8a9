"""The demo alliance: real institutions from press reports, invented people, sample cases.

Institutions and arrangements follow shared/design/demo-alliance.md: the five-level
Guangdong chain (launched 2024) and the city-led Guilin alliance. Everything is placed
relative to the moment the demo is loaded:

- ``alliance``: institutions, departments and their heads, people, availability, patients.
- ``consultations``: remote consultations in every state, with the demo images.
- ``oncall``: on-call rosters of the receiving departments, 12-hour day (08:00–20:00) and
  night (20:00–08:00) shifts, Beijing time, from a week before loading to four weeks after.
  Each team takes the shifts in turn; the first named holds the shift the demo was loaded in:

  ========================  =================================================================
  Dianbai cardiology        ``county`` (Lin Weiming, head), ``county_cardiology_ye``,
                            ``county_cardiology_zhong``
  Dianbai neurology         ``county_neurology_xie``, ``county_neurology_guo``,
                            ``county_neurology`` (Pan, head)
  Dianbai emergency         ``county_emergency_rao``, ``county_emergency_deng``,
                            ``county_emergency`` (Cai, head)
  Maoming neurology         ``maoming_neurology_ke``, ``maoming_neurology_yang``,
                            ``maoming_neurology`` (Zheng, head)
  Yangshuo neurosurgery     ``yangshuo_neurosurgery`` (Wei Tao), ``yangshuo_neurosurgery_ou``,
                            ``yangshuo_neurosurgery_head`` (Liao)
  Guilin neurosurgery       ``guilin_neurosurgery_nong``, ``guilin_neurosurgery_liu``,
                            ``guilin_neurosurgery`` (Qin, head)
  ========================  =================================================================

  So ``county`` is on call for Dianbai cardiology during the shift in which the demo was
  loaded and every third shift before and after it (every 36 hours, day and night in turn):
  log in as ``township``, raise a chest-pain green-channel referral to Dianbai cardiology, and
  ``county`` gets the alert. All demo accounts share the password ``yilian-demo``.
- ``green``: green-channel referrals on the clinical clock (a completed stroke at the Yangshuo
  branch, door-to-needle 42 min; a chest-pain case in the Dianbai chain with its 12-lead ECG,
  door-to-balloon 68 min; an escalated night stroke; a stroke on its way now).
- ``referrals``: ordinary upward referrals in every state, downward ones with follow-ups at
  the village clinic (done, due in two days, overdue).
- ``notices``: a few inbox notifications for the demo users.
- ``teaching``: teaching broadcasts: ``expert`` may start today's ECG lecture (20 minutes after
  loading) for the Guangdong sites; a neurosurgery round next week; yesterday's radiology
  training with attendance, questions and a 10-second recording to replay.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from sqlalchemy import func, select

from yilian.server.core.auth import hash_password
from yilian.server.core.db import Database, utcnow
from yilian.server.core.models import Institution
from yilian.server.core.settings import Settings
from yilian.server.demo import alliance
from yilian.server.demo.consultations import consultations as make_consultations
from yilian.server.demo.consultations import load_studies
from yilian.server.demo.ecg import store_ecg
from yilian.server.demo.green import green_channel
from yilian.server.demo.notices import seed_inbox
from yilian.server.demo.oncall import write_rosters
from yilian.server.demo.referrals import downward, upward
from yilian.server.demo.stats import history as stats_history
from yilian.server.demo.teaching import teaching_sessions
from yilian.server.schema import migrate

logger = logging.getLogger(__name__)
DEMO_PASSWORD = "yilian-demo"


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
        # A year of history for the statistics dashboard: only here, not in the tests' demo.
        await stats_history(db)
    finally:
        await db.close()


async def load_demo(db: Database, settings: Settings) -> dict[str, Any]:
    """Load institutions, alliances, people, availability, consultations, on-call rosters,
    referrals with their follow-ups, notifications, and the demo images."""
    password_hash = hash_password(DEMO_PASSWORD)
    now = utcnow()
    async with db.write() as session:
        inst = await alliance.institutions(session)
        await alliance.alliances(session, inst)
        users = await alliance.users(session, inst, password_hash)
        await alliance.availability(session, users, inst, settings.clinic.slot_horizon_days)
        patients = alliance.patients(session, inst, users, settings.secret_key)
        await session.flush()
        consultations = await make_consultations(session, users, patients, inst)
        rosters = write_rosters(session, inst, users, now)
        referrals, ecg = green_channel(session, inst, users, patients, rosters, now)
        referrals |= upward(session, inst, users, patients, consultations, rosters, now)
        down, follow_ups = await downward(session, inst, users, patients, now)
        referrals |= down
        await session.flush()
        seed_inbox(session, inst, users, referrals, follow_ups, consultations,
                   rosters)
    await load_studies(db, settings, consultations)
    await store_ecg(db, settings, ecg)
    teaching = await teaching_sessions(db, settings.data_dir, inst, users, now)
    logger.info("demo alliance loaded: %d institutions, %d users, %d referrals", len(inst),
                len(users), len(referrals))
    return {"institutions": inst, "users": users, "patients": patients,
            "consultations": consultations, "referrals": referrals, "rosters": rosters,
            "follow_ups": follow_ups, "ecg": ecg, "teaching": teaching}
