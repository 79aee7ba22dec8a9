"""When cached copies of rarely changed tables go stale: a generation counter per watched set of
tables, bumped when a transaction of this process that wrote one of them commits.

A cache notes the generation before it reads and keeps the answer while the generation is the
same (and, for changes made by other processes, for at most its own time to live)::

    ROSTER = watch("users", "institutions")
    before = ROSTER.value
    ...read...
    cache[key] = (before, answer)        # valid while ROSTER.value == before

Writes are seen through every SQLAlchemy ``Session`` of the process (the async sessions' too):
ORM flushes of mapped objects and statements run through a session (``insert``/``update``/
``delete``, Core or ORM). Statements run on a session's connection (``session.connection()
.execute``, what the busiest paths do to skip the ORM's execute layer) are not seen: those
paths write only tables no cache watches (consultations, slots, notifications, the audit log).
The bump comes after COMMIT, so a reader that filled a cache from the
old rows while the change was being made holds an older generation and reads again.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, UOWTransaction
from sqlalchemy.sql.dml import UpdateBase

_DIRTY = "yilian_tables_written"


class Generation:
    """A counter for a set of tables (see the module's description)."""

    def __init__(self, tables: frozenset[str]) -> None:
        self.tables = tables
        self._value = 0
        self._lock = threading.Lock()  # commits come from worker threads too (write_sync)

    @property
    def value(self) -> int:
        return self._value

    def bump(self) -> None:
        with self._lock:
            self._value += 1


_WATCHED: list[Generation] = []


def watch(*tables: str) -> Generation:
    """The generation of these tables (by name), bumped by every commit that wrote one."""
    gen = Generation(frozenset(tables))
    _WATCHED.append(gen)
    if len(_WATCHED) == 1:
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _on_execute)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", _after_rollback)
    return gen


def _mark(session: Session, table: str) -> None:
    session.info.setdefault(_DIRTY, set()).add(table)


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table is not None:
            _mark(session, table)


def _on_execute(state: Any) -> None:
    statement = state.statement
    if isinstance(statement, UpdateBase):
        table = getattr(statement, "table", None)
        name = getattr(table, "name", None)
        if name is not None:
            _mark(state.session, name)


def _after_commit(session: Session) -> None:
    written = session.info.pop(_DIRTY, None)
    if written:
        for gen in _WATCHED:
            if gen.tables & written:
                gen.bump()


def _after_rollback(session: Session, _previous: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_DIRTY, None)
