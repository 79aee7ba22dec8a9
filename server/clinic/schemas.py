"""Request and response models of the clinical API (they also generate the OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from yilian.server.clinic.workflow import Kind, State, Urgency
from yilian.server.core.schemas import (
    HHMM,
    BirthDate,
    ClinicalDatetime,
    Id,
    Input,
    Int,
    Level,
    Name,
    QueryDatetime,
    Specialty,
    Text,
    Uid,
)

Status = State


# --- alliance ------------------------------------------------------------------------------


class InstitutionsQuery(BaseModel):
    level: Level | None = None
    alliance_id: Id | None = None


class DepartmentOut(BaseModel):
    id: int
    name: str
    specialty: str | None
    #: who an unanswered green-channel alert escalates to
    head_id: int | None = None


class InstitutionOut(BaseModel):
    id: int
    name: str
    local_name: str | None = None
    level: Level
    parent_id: int | None
    departments: list[DepartmentOut] = []


class AllianceOut(BaseModel):
    id: int
    name: str
    kind: Literal["tight", "specialty"]
    specialty: str | None
    lead_institution_id: int
    member_ids: list[int]


class ExpertsQuery(BaseModel):
    specialty: Specialty | None = None
    institution_id: Id | None = None
    alliance_id: Id | None = None


class SlotOut(BaseModel):
    id: int
    start: datetime
    end: datetime
    status: Literal["free", "booked", "blocked"]


class ExpertOut(BaseModel):
    id: int
    display_name: str
    institution_id: int
    institution_name: str
    department: str | None
    specialties: list[str]
    title: str | None
    in_my_alliance: bool
    next_free_slots: list[SlotOut]


class SlotsQuery(BaseModel):
    from_: QueryDatetime | None = Field(default=None, alias="from")
    to: QueryDatetime | None = None
    status: Literal["free", "booked", "blocked"] | None = None


class WeeklyRule(Input):
    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday")]
    start: HHMM
    end: HHMM
    slot_minutes: Annotated[int, Field(ge=5, le=240)] = 30


class AvailabilityExceptionIn(Input):
    kind: Literal["leave", "onsite", "extra"]
    start: ClinicalDatetime
    end: ClinicalDatetime
    institution_id: Id | None = None
    slot_minutes: Annotated[int, Field(ge=5, le=240)] | None = None
    note: Annotated[str, StringConstraints(max_length=200)] | None = None


class AvailabilityIn(Input):
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=48)] = "Asia/Shanghai"
    weekly: Annotated[list[WeeklyRule], Field(max_length=50)]
    exceptions: Annotated[list[AvailabilityExceptionIn], Field(max_length=200)] = []


class AvailabilityOut(BaseModel):
    expert_id: int
    timezone: str
    weekly: list[WeeklyRule]
    exceptions: list[AvailabilityExceptionIn]
    #: whether the caller may change it (the expert, a coordinator of their alliance, an admin)
    can_edit: bool = False


# --- patients ------------------------------------------------------------------------------


class PatientIn(Input):
    name: Name
    sex: Literal["male", "female", "other", "unknown"]
    birth_date: BirthDate | None = None
    national_id: Annotated[str, StringConstraints(pattern=r"^[0-9]{17}[0-9Xx]$")] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 -]{5,20}$")] | None = None


class PatientsQuery(BaseModel):
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = Field(
        default=None, description="part of the name, phone or masked national ID")
    limit: Annotated[Int, Field(ge=1, le=200)] = 50


class PatientOut(BaseModel):
    id: int
    institution_id: int
    name: str
    sex: str
    birth_date: date | None
    national_id_masked: str | None
    phone: str | None
    created_at: datetime


# --- consultations -------------------------------------------------------------------------


class ConsultationIn(Input):
    patient_id: Id
    kind: Kind
    urgency: Urgency = "routine"
    question: Text
    expert_id: Id | None = None
    slot_id: Id | None = None
    specialty: Specialty | None = None
    target_institution_id: Id | None = None
    study_uids: Annotated[list[Uid], Field(max_length=50)] = []


class ConsultationsQuery(BaseModel):
    status: Status | None = None
    kind: Kind | None = None
    role: Literal["requester", "expert", "queue"] | None = None


class AcceptIn(Input):
    slot_id: Id | None = None


class ReasonIn(Input):
    reason: Text


class StudyIn(Input):
    study_uid: Uid


class HistoryOut(BaseModel):
    from_status: str | None
    to_status: str
    actor_id: int | None
    actor_name: str | None = Field(description="display name of the actor; null for the system")
    at: datetime
    note: str | None


class PatientSummary(BaseModel):
    id: int
    name: str
    sex: str
    birth_date: date | None


class ConsultationOut(BaseModel):
    id: int
    status: Status
    kind: Kind
    urgency: Urgency
    question: str
    patient_id: int
    patient: PatientSummary
    requester_id: int
    requester_name: str
    requester_institution_id: int
    expert_id: int | None
    expert_name: str | None
    slot: SlotOut | None
    specialty: str | None
    target_institution_id: int | None
    deadline: datetime
    reason: str | None
    study_uids: list[str]
    report_status: Literal["none", "draft", "signed"]
    history: list[HistoryOut]
    created_at: datetime
    updated_at: datetime


class ReportIn(Input):
    findings: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20000)]
    impression: Text
    recommendations: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20000)]


class ReportSignIn(Input):
    """Signing with the password re-entered (the body may also be left out: signing without it,
    for API clients; the version then records ``signed_with_password: false``)."""

    password: Annotated[str, StringConstraints(min_length=1, max_length=256)] | \
        SkipJsonSchema[None] = None

    @field_validator("password", mode="before")
    @classmethod
    def _given(cls, value: object) -> object:
        # Left out means "no password"; an explicit null is a malformed request.
        if value is None:
            raise ValueError("give the password as a string, or leave the field out")
        return value


class ReportVersionOut(BaseModel):
    version: int
    findings: str
    impression: str
    recommendations: str
    author_id: int
    created_at: datetime
    signed: bool
    signed_at: datetime | None
    signed_by_id: int | None
    #: The signer as they were at signing (name, title, institution); null until signed.
    signer_name: str | None
    signer_title: str | None
    signer_institution: str | None
    #: Whether the signer re-entered their password to sign.
    signed_with_password: bool
    #: The version this one corrects (the one before it); null for the first.
    corrects_version: int | None


class ReportOut(BaseModel):
    consultation_id: int
    current: ReportVersionOut
    versions: list[ReportVersionOut]


class ChatMessageOut(BaseModel):
    """A chat line of a video room, as kept with the consultation."""

    peer_id: str
    user_id: int
    display_name: str
    text: str
    at: datetime


class ConsultationWithChatOut(ConsultationOut):
    """One consultation with the chat of its video room."""

    chat: list[ChatMessageOut]
