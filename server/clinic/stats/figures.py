"""The figures, added up from the grouped rows of ``queries`` (pure: no database here).

Each source gives a few rows per (month, institution, category); the totals, the by-month and
the by-institution breakdowns are sums over those rows, so the three always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from yilian.server.clinic import workflow as consultation_workflow
from yilian.server.clinic.referrals import workflow as referral_workflow
from yilian.server.clinic.stats.green import IntervalFigure
from yilian.server.clinic.stats.scope import GRASSROOTS_LEVELS, Place
from yilian.server.clinic.teaching.workflow import KINDS as TEACHING_KINDS

KINDS = ("video", "outpatient", "imaging", "pathology")
#: outcome -> the consultation states it groups
OUTCOMES = {"completed": ("completed",), "declined": ("declined",),
            "cancelled": ("cancelled",), "no_show": ("no_show",), "expired": ("expired",),
            "open": consultation_workflow.OPEN}
READS = {"outpatient": "outpatient_visits", "imaging": "imaging_reads",
         "pathology": "pathology_reads"}
ROW_FIELDS = ("consultations", "consultations_received", "outpatient_visits", "imaging_reads",
              "pathology_reads", "referrals_up", "referrals_down", "green_channel",
              "teaching_sessions", "person_times", "visits", "grassroots_visits")
SENT_RECEIVED = ("referrals_up_sent", "referrals_down_sent", "referrals_up_received",
                 "referrals_down_received")


def share(part: int, whole: int) -> float | None:
    """``part / whole`` to four decimals; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def outcome_counts(rows: Iterable[tuple[Any, ...]]) -> dict[str, Any]:
    """total, by kind, by outcome and by state of (month, inst, kind, status, n) rows."""
    kinds: Counter[str] = Counter()
    states: Counter[str] = Counter()
    for _, _, kind, status, n in rows:
        kinds[kind] += n
        states[status] += n
    return {"total": sum(states.values()),
            "by_kind": {k: kinds[k] for k in KINDS},
            "by_outcome": {o: sum(states[s] for s in ss) for o, ss in OUTCOMES.items()},
            "by_status": {s: states[s] for s in consultation_workflow.STATES}}


class Table:
    """The by-month and by-institution rows, filled source by source."""

    def __init__(self, months: Sequence[str], places: Sequence[Place]) -> None:
        self.months = {m: Counter[str]() for m in months}
        self.places = {p.id: Counter[str]() for p in places}
        self.levels = {p.id: p.level for p in places}

    def add(self, month: str, inst: int | None, field: str, n: int, *,
            monthly: bool = True) -> None:
        if monthly and month in self.months:
            self.months[month][field] += n
        if inst in self.places:
            self.places[inst][field] += n


def build(places: Sequence[Place], months: Sequence[str], visit_months: Sequence[str],
          requested: list[tuple[Any, ...]], received: list[tuple[Any, ...]],
          referrals: list[tuple[Any, ...]], green: list[IntervalFigure],
          sessions: list[tuple[Any, ...]], attendance: list[tuple[Any, ...]],
          visits: list[tuple[Any, ...]]) -> dict[str, Any]:
    """The whole answer of ``GET /api/stats`` but its scope and period."""
    ids = {p.id for p in places}
    table = Table(months, places)
    consultations = outcome_counts(requested)
    for month, inst, kind, status, n in requested:
        table.add(month, inst, "consultations", n)
        if status == "completed" and kind in READS:
            table.add(month, inst, READS[kind], n)
    for kind, field in READS.items():
        consultations[field] = sum(n for _, _, k, s, n in requested
                                   if k == kind and s == "completed")
    consultations["received"] = outcome_counts(received)
    for month, inst, _, _, n in received:
        table.add(month, inst, "consultations_received", n)

    directions: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    sent: Counter[str] = Counter()
    got: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    for month, src, dst, direction, status, channel, n in referrals:
        directions[direction] += n
        outcomes[status] += n
        table.add(month, None, f"referrals_{direction}", n)
        if channel is not None:
            channels[channel] += n
            table.add(month, None, "green_channel", n)
        for inst in {src, dst} & ids:
            table.add(month, inst, f"referrals_{direction}", n, monthly=False)
            if channel is not None:
                table.add(month, inst, "green_channel", n, monthly=False)
        if src in ids:
            sent[direction] += n
            table.add(month, src, f"referrals_{direction}_sent", n, monthly=False)
        if dst in ids:
            got[direction] += n
            table.add(month, dst, f"referrals_{direction}_received", n, monthly=False)
    overall = {f.name: f.median_min for f in green if f.channel is None}
    referral_figures = {
        "up": directions["up"], "down": directions["down"], "total": sum(directions.values()),
        "by_outcome": {s: outcomes[s] for s in referral_workflow.STATES},
        "sent": {"up": sent["up"], "down": sent["down"]},
        "received": {"up": got["up"], "down": got["down"]},
        "green_channel": {
            "count": sum(channels.values()),
            "by_channel": {c: channels[c] for c in referral_workflow.GREEN_CHANNELS},
            "median_request_to_accept_min": overall.get("request_to_accept"),
            "median_request_to_arrival_min": overall.get("request_to_door"),
            "intervals": [vars(f) for f in green if f.channel is not None]}}

    session_kinds: Counter[str] = Counter()
    for month, inst, kind, n in sessions:
        session_kinds[kind] += n
        table.add(month, inst, "teaching_sessions", n)
    for month, inst, n in attendance:
        table.add(month, inst, "person_times", n)
    teaching = {"sessions": sum(session_kinds.values()),
                "by_kind": {k: session_kinds[k] for k in TEACHING_KINDS},
                "person_times": sum(n for _, _, n in attendance)}

    entered: set[tuple[str, int]] = set()
    for month, inst, n in visits:
        entered.add((month, inst))
        table.add(month, inst, "visits", int(n))
        if table.levels.get(inst) in GRASSROOTS_LEVELS:
            table.add(month, inst, "grassroots_visits", int(n))
    total_visits = sum(int(n) for _, _, n in visits)
    grassroots = sum(int(n) for _, inst, n in visits if table.levels.get(inst) in
                     GRASSROOTS_LEVELS)
    missing = sorted(p.id for p in places if any((m, p.id) not in entered for m in visit_months))
    return {
        "consultations": consultations,
        "referrals": referral_figures,
        "teaching": teaching,
        "visits": {"total": total_visits, "grassroots": grassroots,
                   "grassroots_share": share(grassroots, total_visits),
                   "months": list(visit_months), "institutions_missing": missing},
        "by_month": [{"month": m, **_row(c)} for m, c in table.months.items()],
        "by_institution": [{"institution_id": p.id, "name": p.name, "local_name": p.local_name,
                            "level": p.level, "parent_id": p.parent_id,
                            **_row(table.places[p.id]),
                            **{f: table.places[p.id][f] for f in SENT_RECEIVED}}
                           for p in places],
    }


def _row(c: Counter[str]) -> dict[str, Any]:
    return {**{f: c[f] for f in ROW_FIELDS},
            "grassroots_share": share(c["grassroots_visits"], c["visits"])}
