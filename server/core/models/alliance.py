"""Institutions, their departments, and the alliances that join them."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from yilian.server.core.db import Base

LEVELS = ("province", "city", "county", "township", "village")
ALLIANCE_KINDS = ("tight", "specialty")


class Institution(Base):
    __tablename__ = "institutions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    local_name: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("institutions.id"), index=True)

    departments: Mapped[list[Department]] = relationship(back_populates="institution")


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("institution_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    specialty: Mapped[str | None] = mapped_column(String(48), index=True)
    # Who a green-channel alert escalates to when nobody on call accepts in time.
    # (users.department_id points back here: the constraint is added after both tables.)
    head_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", use_alter=True))

    institution: Mapped[Institution] = relationship(back_populates="departments")


class Alliance(Base):
    __tablename__ = "alliances"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    specialty: Mapped[str | None] = mapped_column(String(48))
    lead_institution_id: Mapped[int] = mapped_column(ForeignKey("institutions.id"))

    members: Mapped[list[AllianceMember]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class AllianceMember(Base):
    __tablename__ = "alliance_members"

    alliance_id: Mapped[int] = mapped_column(ForeignKey("alliances.id"), primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institutions.id"), primary_key=True, index=True
    )
