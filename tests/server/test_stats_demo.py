"""The demo's year of history (``yilian demo`` only): figures of the order of Qianxinan's 2017
report, written in bulk quickly, and read back through GET /api/stats."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.conftest import Api
from yilian.server.core import keys
from yilian.server.demo.stats import history, past_months


async def test_a_year_of_history_looks_like_a_real_alliance(api: Api) -> None:
    db = api.server.app[keys.DATABASE]
    began = time.perf_counter()
    counts = await history(db)
    took = time.perf_counter() - began
    assert counts["consultations"] == 427 and counts["referrals"] == 2320
    assert took < 10, took  # a generous bound for a loaded CI machine; ~0.3 s here
    months = past_months(datetime.now(UTC))
    coordinator = await api.login("coordinator")
    status, body = await coordinator.get("/api/stats", params={
        "from": months[0][0].isoformat(), "to": months[-1][1].isoformat()})
    assert status == 200, body
    assert len(body["period"]["months"]) == 12
    assert 413 <= body["consultations"]["total"] <= 420
    assert body["consultations"]["by_kind"]["imaging"] == 14
    assert body["consultations"]["by_kind"]["pathology"] == 4
    assert 100 <= body["consultations"]["outpatient_visits"] <= 135
    # the history's 734 and 1,436, and the few of the demo's own stories that fall in the year
    assert 734 <= body["referrals"]["up"] <= 745 and 1436 <= body["referrals"]["down"] <= 1445
    assert 82 <= body["referrals"]["green_channel"]["count"] <= 86
    assert 3 <= body["referrals"]["green_channel"]["median_request_to_accept_min"] <= 7
    assert 4 <= body["teaching"]["sessions"] <= 6  # and the demo's own recent ones
    assert body["teaching"]["person_times"] >= 20
    assert 0.40 <= body["visits"]["grassroots_share"] <= 0.55
    assert all(m["consultations"] > 10 for m in body["by_month"])
