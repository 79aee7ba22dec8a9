"""Request and response models of the teaching API (common.md "REST"; what it leaves open is
documented here and in the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from yilian.server.core.schemas import ClinicalDatetime, Id, Input, QueryDatetime

Kind = Literal["rounds", "lecture", "surgery_demo", "training"]
Status = Literal["scheduled", "live", "ended"]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=8000)]
#: At most this many institutions per session (a provincial alliance has a few dozen sites).
MAX_INVITED = 200
Invited = Annotated[list[Id], Field(min_length=1, max_length=MAX_INVITED)]


class TeachingSessionIn(Input):
    title: Title
    kind: Kind
    start: ClinicalDatetime
    end: ClinicalDatetime
    presenter_id: Id
    invited_institution_ids: Invited
    description: Description | None = None
    #: record the broadcast for replay (default yes)
    record: bool = True


class TeachingSessionPatch(Input):
    """Only the fields given change; the session must still be scheduled."""

    title: Title | None = None
    kind: Kind | None = None
    start: ClinicalDatetime | None = None
    end: ClinicalDatetime | None = None
    invited_institution_ids: Invited | None = None
    description: Description | None = None
    record: bool | None = None


class TeachingSessionsQuery(BaseModel):
    status: Status | None = None
    #: sessions ending at or after this time
    from_: QueryDatetime | None = Field(default=None, alias="from")
    #: sessions starting before this time
    to: QueryDatetime | None = None


class PresenterOut(BaseModel):
    id: int
    display_name: str
    institution_id: int


class InstitutionRef(BaseModel):
    id: int
    name: str
    local_name: str | None = None


class RecordingOut(BaseModel):
    id: int
    #: a signed link for the caller, valid for two hours; None unless complete
    url: str | None
    duration_s: float | None
    bytes: int | None
    started_at: datetime
    container: Literal["webm", "mkv"]
    status: Literal["recording", "complete", "failed"]


class CanOut(BaseModel):
    start: bool
    end: bool
    edit: bool
    present: bool
    watch: bool
    #: may read the attendance and export it
    attendance: bool


class TeachingSessionOut(BaseModel):
    id: int
    title: str
    kind: Kind
    description: str | None
    start: datetime
    end: datetime
    status: Status
    presenter: PresenterOut
    organiser_id: int
    institution_id: int
    invited_institutions: list[InstitutionRef]
    record: bool
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    recordings: list[RecordingOut]
    #: viewers in the room now, each person once (the session's detail only, while live)
    viewers_now: int | None = None
    can: CanOut


class AttendeeOut(BaseModel):
    user_id: int
    display_name: str
    institution_id: int
    institution_name: str
    #: first join and last leave, clipped to the broadcast (``started_at`` .. ``ended_at``)
    joined_at: datetime
    left_at: datetime | None
    #: whole minutes in the room during the broadcast (union of the user's stays clipped to
    #: it, rounded to the nearest minute); only people with time inside it are listed
    minutes: int


class InstitutionAttendanceOut(BaseModel):
    institution_id: int
    name: str
    #: distinct users of the institution with time inside the broadcast (a reconnect does
    #: not count again; waiting in the room before the start does not count)
    person_times: int
    #: their minutes, summed
    minutes: int


class QuestionOut(BaseModel):
    id: int
    user_id: int
    display_name: str
    institution_name: str
    text: str
    at: datetime
    answered_at: datetime | None


class RecordingUsageOut(BaseModel):
    recordings: int
    bytes: int
    #: bytes of files on disk under the recordings folder (includes files without a row)
    disk_bytes: int
    free_bytes: int
    by_status: dict[str, int]
