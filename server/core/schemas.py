"""Shared request and response types of the JSON API: strict input, common field types, login."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Specialty = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,47}$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
Uid = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_string(value: Any) -> Any:
    # Query strings would otherwise accept "0.5" as a Unix timestamp.
    if isinstance(value, str) and not _ISO.match(value):
        raise ValueError("expected an ISO 8601 date-time with offset, e.g. 2026-12-01T09:00:00+08:00")
    return value


QueryDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_string)]

Role = Literal["village_doctor", "township_doctor", "specialist", "coordinator", "admin"]
Level = Literal["province", "city", "county", "township", "village"]


class Input(BaseModel):
    """Strict input: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --- auth ----------------------------------------------------------------------------------


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


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    user: UserOut


# --- misc ----------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"]
