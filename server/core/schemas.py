"""Shared request and response types of the JSON API: strict input, common field types, login.

Parsing is strict in one place: numbers are ASCII digits only (``str.isdigit`` and ``int``
also take Arabic-Indic, full-width or superscript digits, signs, spaces and underscores), and
dates and times lie in a calendar range the server can compute with (adding a day to
9999-12-31 or converting 0001-01-01T00:00+14:00 to UTC overflows).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

MAX_ID = 2**31 - 1
#: Years a clinical date-time (a slot, a leave, a deadline) may fall in.
CLINICAL_YEARS = (1900, 2200)
#: The earliest birth date accepted.
EARLIEST_BIRTH = date(1900, 1, 1)
# The place on earth where the day starts first: a birth date is never later than its today.
_EARLIEST_ZONE = timezone(timedelta(hours=14))
_ASCII_INT = re.compile(r"-?[0-9]+")


def ascii_int(raw: str, low: int, high: int) -> int | None:
    """``raw`` as an integer if it is ASCII digits (with an optional leading minus) within
    ``low..high``; otherwise None. Nothing is normalised: no spaces, signs, or other digits."""
    if len(raw) > 40 or not _ASCII_INT.fullmatch(raw):
        return None
    value = int(raw)
    return value if low <= value <= high else None


def _ascii_digits(value: Any) -> Any:
    # Query strings: only ASCII digits reach pydantic's lax int parsing, which would take
    # "+12", " 12", "1_2" and "12.0".
    if isinstance(value, str) and not (len(value) <= 40 and _ASCII_INT.fullmatch(value)):
        raise ValueError("expected an integer written in ASCII digits")
    return value


#: An integer that a query string may give as ASCII digits (JSON bodies need a JSON number).
Int = Annotated[int, BeforeValidator(_ascii_digits)]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Specialty = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,47}$")]
Id = Annotated[Int, Field(ge=1, le=MAX_ID)]
Uid = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]

_ISO = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}", re.ASCII)


def _iso_string(value: Any) -> Any:
    # Query strings would otherwise accept "0.5" as a Unix timestamp.
    if isinstance(value, str) and not _ISO.match(value):
        raise ValueError("expected an ISO 8601 date-time with offset, e.g. 2026-12-01T09:00:00+08:00")
    return value


def _clinical_range(value: datetime) -> datetime:
    # Checked on the local year, before anything converts it: 0001-01-01T00:00+14:00 has no
    # UTC form, and 9999-12-31 no next day.
    low, high = CLINICAL_YEARS
    if not low <= value.year <= high:
        raise ValueError(f"the year must be between {low} and {high}")
    return value


def _past_birth(value: date) -> date:
    if value < EARLIEST_BIRTH:
        raise ValueError(f"a birth date is not before {EARLIEST_BIRTH.isoformat()}")
    if value > datetime.now(_EARLIEST_ZONE).date():
        raise ValueError("a birth date is not in the future")
    return value


#: A date-time with an offset, in years 1900-2200 (slots, leaves, availability).
ClinicalDatetime = Annotated[AwareDatetime, AfterValidator(_clinical_range)]
#: The same, given in a query string (ISO 8601 only, no Unix timestamps).
QueryDatetime = Annotated[ClinicalDatetime, BeforeValidator(_iso_string)]
#: A birth date: from 1900 on, and not in the future.
BirthDate = Annotated[date, AfterValidator(_past_birth)]

Role = Literal["village_doctor", "township_doctor", "specialist", "coordinator", "admin"]
Level = Literal["province", "city", "county", "township", "village"]


class Input(BaseModel):
    """Strict input: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- auth ----------------------------------------------------------------------------------


#: The languages of the web client (web/locales/<language>/).
Locale = Literal["zh-CN", "en"]


class LoginIn(Input):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    institution_id: int
    department_id: int | None = None
    specialties: list[str] = []
    title: str | None = None
    locale: Locale | None = None  # the language the user chose; None until they choose


class PreferencesIn(Input):
    locale: Locale


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut
    #: A new or reset account: every route but the password change answers 403
    #: ``password_change_required`` until ``POST /api/auth/password``.
    must_change_password: bool = False


# --- misc ----------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]
