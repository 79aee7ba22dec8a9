"""The whole database schema: every package's tables and the Alembic scripts that build them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

import yilian.dicom.models
import yilian.server.clinic.models
import yilian.server.clinic.stats.models
import yilian.server.clinic.teaching.models
import yilian.server.core.models
import yilian.signaling.models  # noqa: F401  (each import declares its tables on Base)
from yilian.server.core.db import Base, Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def metadata() -> MetaData:
    """Every table of Yilian (what Alembic compares the migrations against)."""
    return Base.metadata


async def migrate(db: Database) -> None:
    """Bring ``db`` to the newest schema."""
    await db.migrate(MIGRATIONS_DIR)
