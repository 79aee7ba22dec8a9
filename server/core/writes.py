"""A change of several rows that stands or falls as one: on PostgreSQL, in one statement.

A booking writes the consultation, its first event and the expert's notification and takes the
slot; an accept updates the consultation and adds an event and a notification. Statement by
statement that is a round trip each, and under load every round trip is a lap of the event loop
behind every other request: the writes answered three times slower than the reads.
:class:`Writes` collects such a change and :meth:`Writes.run` sends it:

- on PostgreSQL as ONE statement, each write a data-modifying CTE. The *guards* (an UPDATE …
  RETURNING that must match a row: the slot is still free, the consultation is as it was read)
  run unconditionally; every other write is conditioned on all of them matching. One statement
  is atomic by itself, so with one guard it needs no transaction at all
  (``Database.write_fused``: no BEGIN and COMMIT round trips either);
- on SQLite (no writes in a CTE; no round trips either, it runs in-process) as the same
  statements one after another in the caller's transaction, the guards last.

When a guard matches no row, :meth:`Writes.run` raises :class:`NotApplied`: PostgreSQL wrote
nothing, and on SQLite the exception rolls the caller's transaction back.

Within one statement PostgreSQL picks the order the writes run in (keys of one table need not
follow the order the writes were added), every write sees the tables as they were before the
statement, and foreign keys are checked at its end (a row may refer to one inserted beside it).
So a batch touches each row once at most: two updates of one row in one statement leave only
one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BindParameter,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    exists,
    insert,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.orm import class_mapper
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.visitors import replacement_traverse

from yilian.server.core.errors import Conflict

_M = TypeVar("_M")

#: How often ``Database.write_fused`` runs a change again that found its rows changed.
CHANGED_RETRIES = 3


class Changed(Conflict):
    """What a change read was changed by another before it wrote (its guard matched no row):
    ``Database.write_fused`` runs it again; 409 if it keeps happening."""

    def __init__(self) -> None:
        super().__init__("it was changed by somebody else at the same moment; try again")


class NotApplied(Exception):
    """A guard of a :class:`Writes` matched no row: nothing was written (or what was, on
    SQLite, is rolled back with the exception). ``index``: the first guard that missed."""

    def __init__(self, index: int) -> None:
        super().__init__(f"guard {index} matched no row")
        self.index = index


@dataclass
class _Insert:
    table: Table
    row: dict[str, Any]
    on_key: Callable[[Any], None] | None


@dataclass
class _Update:
    stmt: Update
    params: dict[str, Any]


@dataclass
class Writes:
    """The writes of one change, sent by :meth:`run` (see the module's docstring)."""

    guards: list[_Update] = field(default_factory=list)
    writes: list[_Insert | _Update] = field(default_factory=list)

    def guard(self, stmt: Update, params: Mapping[str, Any]) -> None:
        """An UPDATE … RETURNING that must match a row for anything to be written; its row
        is in :meth:`run`'s result, in the order the guards were added. Like :meth:`update`'s,
        ``stmt`` is built once (a module's constant): the fused statement of each shape is
        kept by the identity of its parts."""
        self.guards.append(_Update(stmt, dict(params)))

    def insert(self, table: Table, row: Mapping[str, Any],
               on_key: Callable[[Any], None] | None = None) -> None:
        """Insert one row (column key -> value); ``on_key`` is given its primary key."""
        self.writes.append(_Insert(table, dict(row), on_key))

    def update(self, stmt: Update, params: Mapping[str, Any]) -> None:
        """An UPDATE (built once, with bind parameters) that runs when the guards match."""
        self.writes.append(_Update(stmt, dict(params)))

    def run(self, conn: Connection) -> list[tuple[Any, ...]]:
        """Write it all, or raise :class:`NotApplied`; the guards' returned values, a tuple
        per guard (each guard matches one row at most: by primary key)."""
        if conn.dialect.name == "postgresql":
            return self._run_fused(conn)
        return self._run_each(conn)

    def _run_each(self, conn: Connection) -> list[tuple[Any, ...]]:
        for w in self.writes:
            if isinstance(w, _Update):
                conn.execute(w.stmt, w.params)
            elif w.on_key is None:
                conn.execute(_insert(w.table), w.row)
            else:
                w.on_key(conn.execute(_insert(w.table, returning_key=True), w.row).scalar_one())
        rows = []
        for i, g in enumerate(self.guards):
            row = conn.execute(g.stmt, g.params).first()
            if row is None:
                raise NotApplied(i)
            rows.append(tuple(row))
        return rows

    def _run_fused(self, conn: Connection) -> list[tuple[Any, ...]]:
        if len(self.guards) > 1 and autocommit(conn):
            # Guards run whether or not the others match: only a transaction undoes one
            # that matched when another did not.
            raise RuntimeError("more than one guard needs a transaction")
        shape = (tuple(id(g.stmt) for g in self.guards),
                 tuple((id(w.stmt), None) if isinstance(w, _Update)
                       else (id(w.table), tuple(w.row), w.on_key is not None)
                       for w in self.writes))
        stmt = _FUSED.get(shape)
        if stmt is None:
            stmt = _FUSED[shape] = _fuse(self)
        params: dict[str, Any] = {}
        for i, g in enumerate(self.guards):
            params |= {f"g{i}_{k}": v for k, v in g.params.items()}
        for i, w in enumerate(self.writes):
            values = w.params if isinstance(w, _Update) else w.row
            params |= {f"w{i}_{k}": v for k, v in values.items()}
        row = conn.execute(stmt, params).one()[1:]  # (the first column: so there is one)
        n = len(self.guards)
        for i in range(n):
            if not row[i]:
                raise NotApplied(i)
        rows, at = [], n
        for g in self.guards:
            width = len(g.stmt.exported_columns)
            rows.append(tuple(row[at:at + width]))
            at += width
        keys = iter(row[at:])
        for w in self.writes:
            if isinstance(w, _Insert) and w.on_key is not None:
                w.on_key(next(keys))
        return rows


def transient(model: type[_M], values: Mapping[str, Any]) -> _M:
    """A mapped object holding ``values``, never in a session (a batch's row, for the rules,
    the notices and the view): made as the ORM makes a loaded row, without the constructor's
    event per attribute (a sixth of the time of ``model(**values)``)."""
    obj = class_mapper(model).class_manager.new_instance()
    obj.__dict__.update(values)
    return cast(_M, obj)


def autocommit(conn: Connection) -> bool:
    """Whether ``conn`` runs each statement on its own (``Database.write_fused`` on
    PostgreSQL), not inside a transaction."""
    return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


_FUSED: dict[Any, Select[Any]] = {}
_INSERTS: dict[tuple[Table, bool], Any] = {}


def _insert(table: Table, returning_key: bool = False) -> Any:
    """One INSERT per table, returning its primary key or not (built once: ``core.lane``
    keeps what it compiled by identity)."""
    stmt = _INSERTS.get((table, returning_key))
    if stmt is None:
        stmt = insert(table)
        if returning_key:
            stmt = stmt.returning(list(table.primary_key.columns)[0])
        _INSERTS[(table, returning_key)] = stmt
    return stmt


def _renamed(stmt: Update, prefix: str) -> Update:
    """``stmt`` with each bind parameter named ``prefix`` + its name (unique in the whole
    fused statement)."""

    def rename(element: Any, **_kw: Any) -> Any:
        if isinstance(element, BindParameter) and element.required:
            return bindparam(prefix + element.key, type_=element.type)
        return None

    return cast(Update, replacement_traverse(stmt, {}, rename))


def _fuse(writes: Writes) -> Select[Any]:
    """The one statement of ``writes``' shape (built once per shape): the guards and writes as
    CTEs, selecting whether each guard matched, the guards' columns, then the inserted keys."""
    guards = [_renamed(g.stmt, f"g{i}_").cte(f"g{i}") for i, g in enumerate(writes.guards)]
    matched = [exists(select(literal(1)).select_from(g)) for g in guards]
    condition = and_(*matched) if matched else true()
    ctes, keys = [], []
    for i, w in enumerate(writes.writes):
        if isinstance(w, _Update):
            ctes.append(_renamed(w.stmt, f"w{i}_").where(condition).cte(f"w{i}"))
            continue
        table = w.table
        values = select(*(bindparam(f"w{i}_{col}", type_=table.c[col].type) for col in w.row))
        stmt = insert(table).from_select(list(w.row), values.where(condition),
                                          include_defaults=False)
        if w.on_key is not None:
            pk = list(table.primary_key.columns)[0]
            cte = stmt.returning(pk).cte(f"w{i}")
            keys.append(select(cte.c[pk.key]).scalar_subquery())
        else:
            cte = stmt.cte(f"w{i}")
        ctes.append(cte)
    # One column at least: a batch of unconditional inserts returns no key, and a statement
    # that selects nothing returns no row either.
    columns: list[Any] = [literal_column("1").label("ran")]
    columns += [m.label(f"matched{i}") for i, m in enumerate(matched)]
    for i, g in enumerate(guards):
        columns += [select(col).scalar_subquery().label(f"g{i}_{col.key}") for col in g.c]
    columns += [k.label(f"key{i}") for i, k in enumerate(keys)]
    return cast(Select[Any], select(*columns).add_cte(*guards, *ctes))
