"""The coordinator's statistics dashboard in Chromium, over the hand-built quarter
(``tests/server/stats_fixture``): the cards and the charts come from GET /api/stats, a click on
an institution drills down, and the CSV download holds the same totals."""

from __future__ import annotations

import csv
import io

from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from tests.e2e.test_consultation_flow import login
from tests.server import stats_fixture
from yilian.server.core import keys

QUARTER = "#/stats?period=quarter&value=2024-Q1"


async def test_coordinator_dashboard_charts_and_csv(server: TestServer, new_page) -> None:
    ids = await stats_fixture.build(server.app[keys.DATABASE])
    page = await new_page()
    await login(page, "coordinator")
    async with page.expect_response(lambda r: "/api/stats?" in r.url) as first:
        await page.goto("/" + QUARTER)
    body = await (await first.value).json()
    await expect(page.locator(".stats-cards[data-ready]")).to_be_visible()
    assert body["period"]["months"] == ["2024-01", "2024-02", "2024-03"]

    # the cards show the API's figures
    for figure, value in (("consultations", 13), ("outpatient", 2), ("imaging", 2),
                          ("pathology", 1), ("referrals_up", 5), ("referrals_down", 2),
                          ("green", 3), ("sessions", 2), ("person_times", 3)):
        card = page.locator(f'.stats-card[data-figure="{figure}"]')
        assert await card.get_attribute("data-value") == str(value), figure
        await expect(card.locator(".stats-card-value")).to_have_text(str(value))
    await expect(page.locator('.stats-card[data-figure="grassroots"] .stats-card-value')
                 ).to_have_text("20.8%")

    # each chart is drawn (a canvas) from the same numbers as its data table
    for chart in ("stats-monthly", "stats-kinds", "stats-institutions"):
        await expect(page.locator(f"#{chart}[data-drawn] canvas")).to_have_count(1)
    cells = await page.locator('table[data-chart="stats-monthly"] tbody tr').evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert cells == [[m["month"], str(m["consultations"]), str(m["referrals_up"]),
                      str(m["referrals_down"]), str(m["person_times"])]
                     for m in body["by_month"]]
    assert cells[0] == ["2024-01", "4", "2", "0", "2"]
    assert page.js_errors == []  # type: ignore[attr-defined]

    # the CSV download: the same totals
    async with page.expect_download() as info:
        await page.locator('[data-action="export-csv"]').click()
    download = await info.value
    assert download.suggested_filename == "yilian-stats-2024-01-2024-03.csv"
    raw = open(await download.path(), "rb").read()  # noqa: ASYNC230 - a small local file
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    summary = {r[0]: r[1] for r in rows if len(r) == 2}
    assert summary["Consultations requested"] == str(body["consultations"]["total"]) == "13"
    assert summary["Referred up"] == "5" and summary["Referred down"] == "2"
    assert summary["Attendee person-times"] == "3" and summary["Grassroots share"] == "0.2083"

    # drill down: the Dianbai row opens Dianbai with those below it
    dianbai = ids["institutions"]["dianbai"]
    async with page.expect_response(lambda r: "/api/stats?" in r.url
                                    and f"institution_id={dianbai}" in r.url) as info:
        await page.locator(f'#stats-by-institution tr[data-institution="{dianbai}"] a').click()
    drilled = await (await info.value).json()
    await expect(page.locator(".stats-crumbs [aria-current=page]")).to_have_text(
        "Dianbai District People's Hospital")
    await expect(page.locator('.stats-card[data-figure="referrals_up"][data-value="4"]')
                 ).to_be_visible()
    assert drilled["scope"]["institution_ids"] == [dianbai]
    assert page.js_errors == []  # type: ignore[attr-defined]
