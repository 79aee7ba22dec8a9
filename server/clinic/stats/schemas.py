"""Request and response shapes of the statistics routes (the names api.md fixes, and more)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from yilian.server.core.schemas import Id, Input, Level

Month = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
#: ``from`` and ``to``: a date or a date-time with an offset (``stats.period``).
Bound = Annotated[str, StringConstraints(min_length=10, max_length=40)]


class StatsQuery(BaseModel):
    alliance_id: Id | None = None
    institution_id: Id | None = None
    include_below: bool = Field(default=False, description="the institution and every "
                                "institution under it (branches, their branches, ...)")
    from_: Bound | None = Field(default=None, alias="from", description="inclusive: a date "
                                "(Beijing midnight) or a date-time with an offset; default "
                                "the start of the current month")
    to: Bound | None = Field(default=None, description="exclusive; a date includes that day")
    # ``format`` (json, csv, xlsx) is read by the route, not declared here: the OpenAPI
    # document gives one content type per route, and this one's is the JSON.


class ScopeOut(BaseModel):
    alliance_id: int | None
    institution_id: int | None
    include_below: bool
    institution_ids: list[int]


class PeriodOut(BaseModel):
    model_config = ConfigDict(serialize_by_alias=True)

    #: inclusive, exclusive, both in UTC; months in Beijing time
    from_: datetime = Field(alias="from")
    to: datetime
    months: list[str]
    timezone: Literal["Asia/Shanghai"] = "Asia/Shanghai"


class OutcomeCounts(BaseModel):
    total: int
    by_kind: dict[str, int]
    by_outcome: dict[str, int]
    by_status: dict[str, int]


class ConsultationsOut(OutcomeCounts):
    #: completed remote outpatient visits, imaging and pathology reads (requesting side)
    outpatient_visits: int
    imaging_reads: int
    pathology_reads: int
    #: what the institutions were asked (their target institution or expert's)
    received: OutcomeCounts


class IntervalOut(BaseModel):
    name: str
    channel: str | None
    count: int
    median_min: float | None
    target_min: int | None
    met: int | None


class GreenChannelOut(BaseModel):
    count: int
    by_channel: dict[str, int]
    median_request_to_accept_min: float | None
    median_request_to_arrival_min: float | None
    intervals: list[IntervalOut]


class DirectionCounts(BaseModel):
    up: int
    down: int


class ReferralsOut(BaseModel):
    up: int
    down: int
    total: int
    by_outcome: dict[str, int]
    sent: DirectionCounts
    received: DirectionCounts
    green_channel: GreenChannelOut


class TeachingOut(BaseModel):
    sessions: int
    by_kind: dict[str, int]
    person_times: int


class VisitsOut(BaseModel):
    #: entered monthly outpatient visits of the whole months in the period
    total: int
    grassroots: int
    grassroots_share: float | None
    months: list[str]
    #: institutions of the scope with no total for some of those months
    institutions_missing: list[int]


class Row(BaseModel):
    """One month's or one institution's figures."""

    consultations: int
    consultations_received: int
    outpatient_visits: int
    imaging_reads: int
    pathology_reads: int
    referrals_up: int
    referrals_down: int
    green_channel: int
    teaching_sessions: int
    person_times: int
    visits: int
    grassroots_visits: int
    grassroots_share: float | None


class MonthRow(Row):
    month: str


class InstitutionRow(Row):
    institution_id: int
    name: str
    local_name: str | None
    level: Level
    parent_id: int | None
    referrals_up_sent: int
    referrals_down_sent: int
    referrals_up_received: int
    referrals_down_received: int


class StatsOut(BaseModel):
    scope: ScopeOut
    period: PeriodOut
    consultations: ConsultationsOut
    referrals: ReferralsOut
    teaching: TeachingOut
    visits: VisitsOut
    by_month: list[MonthRow]
    by_institution: list[InstitutionRow]


# --- visit totals ----------------------------------------------------------------------------


class VisitTotalIn(Input):
    institution_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    month: Month
    visits: Annotated[int, Field(ge=0, le=100_000_000)]


class VisitTotalsIn(Input):
    totals: Annotated[list[VisitTotalIn], Field(min_length=1, max_length=5000)]


class VisitTotalOut(BaseModel):
    institution_id: int
    month: str
    visits: int
    updated_by_id: int | None
    updated_at: datetime


class VisitTotalsQuery(BaseModel):
    alliance_id: Id | None = None
    institution_id: Id | None = None
    from_month: Month | None = None
    to_month: Month | None = None


class VisitImportOut(BaseModel):
    imported: int
    totals: list[VisitTotalOut]


