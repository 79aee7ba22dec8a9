"""Request and response models of the referral, follow-up and on-call API (api.md
"Referrals"; what api.md leaves open is documented here and in the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from yilian.server.clinic.referrals.workflow import Direction, GreenChannel, State
from yilian.server.clinic.schemas import HistoryOut, PatientSummary
from yilian.server.core.schemas import ClinicalDatetime, Id, Input, QueryDatetime, Text, Uid

Milestone = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")]


class ReferralIn(Input):
    patient_id: Id
    direction: Direction
    to_institution_id: Id
    #: the receiving department's id (``GET /api/institutions`` lists each one's departments)
    department: Id | None = None
    reason: Text
    summary: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20000)] | None \
        = None
    green_channel: GreenChannel | None = None
    onset_at: ClinicalDatetime | None = None
    #: a green-channel chest-pain case: when the patient was first seen (first medical contact)
    first_contact_at: ClinicalDatetime | None = None
    #: the consultation this referral follows from; its signed report is shared
    consultation_id: Id | None = None
    #: further consultations (of the same patient) whose reports are shared
    consultation_ids: Annotated[list[Id], Field(max_length=20)] = []
    study_uids: Annotated[list[Uid], Field(max_length=50)] = []
    #: a downward referral: when the receiving clinic should see the patient (default 7 days)
    follow_up_due: ClinicalDatetime | None = None
    #: a downward referral: what the follow-up should check
    follow_up_plan: Annotated[str, StringConstraints(strip_whitespace=True,
                                                      max_length=4000)] | None = None


class ReferralsQuery(BaseModel):
    status: State | None = None
    direction: Direction | None = None
    #: ``incoming``: to the caller's institution; ``outgoing``: from it
    box: Literal["incoming", "outgoing"] | None = None
    green_channel: Literal["any", "none"] | None = None
    open: bool | None = Field(default=None, description="only referrals still moving")
    patient_id: Id | None = None


class ReferralReasonIn(Input):
    reason: Text


class MilestoneIn(Input):
    milestone: Milestone
    #: when it happened; default now
    at: ClinicalDatetime | None = None
    #: required when the time point already has a value (a correction keeps the old one)
    reason: Text | None = None


class ShareIn(Input):
    study_uids: Annotated[list[Uid], Field(max_length=50)] = []
    consultation_ids: Annotated[list[Id], Field(max_length=20)] = []


class MilestoneOut(BaseModel):
    id: int
    milestone: str
    at: datetime
    recorded_by_id: int | None
    recorded_by_name: str | None
    recorded_at: datetime
    source: Literal["manual", "transition", "ecg"]
    corrects_id: int | None
    reason: str | None
    #: a later row corrected this one
    superseded: bool


class IntervalOut(BaseModel):
    start: str  # the time point it runs from
    end: str  # and to
    #: whole elapsed minutes with one decimal; while running, up to now; null until it starts
    minutes: float | None
    target_minutes: int | None
    #: the end is recorded (false: still running, or not started)
    done: bool
    #: within target (null: no target, not started, or still running within its target; a
    #: running interval past its target is already false; a closed referral's unfinished
    #: intervals stop running: minutes null)
    met: bool | None


class ReferralTimes(BaseModel):
    onset_at: datetime | None
    requested_at: datetime
    accepted_at: datetime | None
    departed_at: datetime | None
    arrived_at: datetime | None
    completed_at: datetime | None
    closed_at: datetime | None = Field(description="rejected, cancelled or expired at")


class SharedConsultationOut(BaseModel):
    id: int
    kind: str
    question: str
    report_status: Literal["none", "draft", "signed"]


class ReferralOut(BaseModel):
    id: int
    status: State
    direction: Direction
    patient_id: int
    patient: PatientSummary
    from_institution_id: int
    to_institution_id: int
    department: int | None
    department_name: str | None
    green_channel: GreenChannel | None
    reason: str
    summary: str | None
    consultation_id: int | None
    requester_id: int
    requester_name: str
    accepted_by_id: int | None
    accepted_by_name: str | None
    close_reason: str | None
    deadline: datetime
    escalated_at: datetime | None
    times: ReferralTimes
    #: every recorded time point, corrections included, oldest first
    milestones: list[MilestoneOut]
    #: the time points this referral's channel keeps, in clinical order (the buttons to show)
    milestone_names: list[str]
    #: name -> interval, in the channel's display order
    intervals: dict[str, IntervalOut]
    study_uids: list[str]
    consultations: list[SharedConsultationOut]
    follow_up_id: int | None
    history: list[HistoryOut]
    #: the actions the caller may take now (the buttons to show)
    actions: list[str]
    updated_at: datetime


class TargetsQuery(BaseModel):
    direction: Direction


class TargetDepartmentOut(BaseModel):
    id: int
    name: str
    specialty: str | None
    #: how many people are on call there now (a green channel goes to them)
    on_call_now: int


class ReferralTargetOut(BaseModel):
    """An institution a referral in this direction may go to (``up``: a higher level,
    ``down``: a lower one), members of the caller's alliances first."""

    id: int
    name: str
    local_name: str | None
    level: str
    parent_id: int | None
    in_my_alliance: bool
    departments: list[TargetDepartmentOut]


class FollowUpsQuery(BaseModel):
    status: Literal["due", "overdue", "completed", "cancelled"] | None = None
    patient_id: Id | None = None


class FollowUpCompleteIn(Input):
    outcome: Text


class FollowUpOut(BaseModel):
    id: int
    referral_id: int | None
    patient_id: int
    patient: PatientSummary
    institution_id: int
    assigned_to_id: int | None
    assigned_to_name: str | None
    plan: str | None
    due_at: datetime
    status: Literal["due", "completed", "cancelled"]
    overdue: bool
    outcome: str | None
    completed_at: datetime | None
    completed_by_name: str | None
    #: the referring (upper-level) institution
    from_institution_id: int | None


class OnCallQuery(BaseModel):
    department_id: Id | None = None
    institution_id: Id | None = None
    from_: QueryDatetime | None = Field(default=None, alias="from")
    to: QueryDatetime | None = None


class OnCallIn(Input):
    department_id: Id
    user_id: Id
    start: ClinicalDatetime
    end: ClinicalDatetime


class OnCallOut(BaseModel):
    id: int
    department_id: int
    department_name: str
    institution_id: int
    user_id: int
    user_name: str
    start: datetime
    end: datetime
    #: on call at this moment
    now: bool


class DepartmentHeadIn(Input):
    user_id: Id | None


class DepartmentHeadOut(BaseModel):
    """A department and the head its green-channel alerts escalate to."""

    id: int
    name: str
    institution_id: int
    head_id: int | None
    head_name: str | None

