"""Teaching broadcasts of the demo alliance: one the provincial cardiologist can start within
minutes, a neurosurgery lecture next week, and yesterday's radiology training with its
attendance from several sites, questions (some answered) and a short recording to replay."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

from yilian.server.clinic.teaching.media import recording_path
from yilian.server.clinic.teaching.models import (
    TeachingAttendance,
    TeachingInvitation,
    TeachingRecording,
    TeachingSession,
)
from yilian.server.core.db import Database
from yilian.server.core.models import Institution, User
from yilian.signaling.models import RtcChatMessage

#: Length of the demo recording: enough to see the replay page work, small on disk (~10 KB).
RECORDING_SECONDS = 10


def encode_recording(path: Path, seconds: int = RECORDING_SECONDS) -> tuple[float, int]:
    """A synthetic 320x240 VP8 WebM (a bar sweeping across a changing background), as the
    relay's recorder would leave one; returns (duration in seconds, bytes). Blocking."""
    import av
    import numpy as np

    # 5 frames a second keep the encoding at a fraction of a second of CPU (the demo loads
    # at every fresh start and in every test run's template); the replay still moves.
    fps = 5
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with av.open(str(path), "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.bit_rate = 150_000
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(seconds * fps):
            image = np.zeros((240, 320, 3), np.uint8)
            image[..., 1] = (i * 2) % 256
            x = (i * 12) % 300
            image[:, x:x + 20] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return float(seconds), path.stat().st_size


def _session(title: str, kind: str, start: datetime, minutes: int, presenter: User,
             organiser: User, invited: list[Institution], description: str,
             **extra: object) -> TeachingSession:
    return TeachingSession(
        title=title, kind=kind, description=description, start=start,
        end=start + timedelta(minutes=minutes), presenter_id=presenter.id,
        organiser_id=organiser.id, institution_id=organiser.institution_id,
        record=True, created_at=start - timedelta(days=3),
        invitations=[TeachingInvitation(institution_id=i.id) for i in invited], **extra)


async def teaching_sessions(db: Database, data_dir: Path, inst: dict[str, Institution],
                            users: dict[str, User], now: datetime) -> dict[str, int]:
    """Write the demo sessions; returns their ids by name (``today``, ``next_week``,
    ``yesterday``)."""
    guangdong = [inst[k] for k in ("dianbai", "shalang", "shangtang", "maoming")]
    started = now - timedelta(days=1, minutes=5)
    async with db.write() as session:
        today = _session(
            "Chest pain triage: reading the 12-lead ECG (胸痛患者心电图判读)", "lecture",
            now + timedelta(minutes=20), 60, users["expert"], users["coordinator"], guangdong,
            "For township and village doctors: STEMI patterns, when to call the green channel.")
        next_week = _session(
            "Neurosurgery ward rounds: post-thrombectomy care (取栓术后管理查房)", "rounds",
            now + timedelta(days=7), 90, users["gdph_neurosurgery"], users["gdph_neurosurgery"],
            [inst["dianbai"], inst["maoming"]],
            "Case-based rounds from the provincial neurosurgery ward.")
        yesterday = _session(
            "Chest CT for primary care: the five findings not to miss (基层胸部CT判读培训)",
            "training", now - timedelta(days=1), 60, users["gdph_radiology"],
            users["coordinator"], guangdong,
            "Training for county and township sites, with the cases shown.",
            status="ended", started_at=started, ended_at=started + timedelta(minutes=62),
            reminded_at=started - timedelta(minutes=10))
        session.add_all([today, next_week, yesterday])
        await session.flush()
        # Who watched yesterday, from where; one township doctor lost the connection once.
        stays = [("county", 2, 60), ("county_cardiology_ye", 4, 58),
                 ("county_neurology", 10, 45), ("county_radiology", 1, 61),
                 ("maoming_radiology", 3, 60), ("maoming_neurology", 5, 30),
                 ("township", 6, 20), ("township", 24, 55), ("village", 8, 52)]
        for name, joined, left in stays:
            user = users[name]
            session.add(TeachingAttendance(
                session_id=yesterday.id, user_id=user.id, institution_id=user.institution_id,
                joined_at=started + timedelta(minutes=joined),
                left_at=started + timedelta(minutes=left)))
        presenter = users["gdph_radiology"]
        questions = [
            ("township", 15, "How do we tell a ground-glass nodule from motion artefact?", 18),
            ("county", 27, "Which window settings do you use for a suspected pneumothorax?", 29),
            ("village", 40, "我们卫生站没有CT，哪些症状应尽快转诊？", 44),
            ("maoming_radiology", 55, "Can you share the slides after the session?", None),
        ]
        for name, minute, text, answered in questions:
            session.add(RtcChatMessage(
                room=f"teaching:{yesterday.id}", teaching_session_id=yesterday.id,
                user_id=users[name].id, peer_id=f"demo-{name}", text=text,
                at=started + timedelta(minutes=minute),
                answered_at=None if answered is None else started + timedelta(minutes=answered),
                answered_by_id=None if answered is None else presenter.id))
        recording = TeachingRecording(session_id=yesterday.id, container="webm", path="",
                                      started_at=started, status="recording")
        session.add(recording)
        await session.flush()
        relative = recording_path(yesterday.id, recording.id, "webm", started)
        recording.path = relative.as_posix()
        ids = {"today": today.id, "next_week": next_week.id, "yesterday": yesterday.id}
        recording_id = recording.id
    duration, size = await asyncio.to_thread(encode_recording, data_dir / relative)
    async with db.write() as session:
        row = await session.get(TeachingRecording, recording_id)
        assert row is not None
        row.status, row.duration_s, row.bytes = "complete", duration, size
        row.ended_at = row.started_at + timedelta(seconds=duration)
    return ids
