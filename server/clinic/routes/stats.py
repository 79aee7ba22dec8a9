"""The alliance's statistics over HTTP: the figures (JSON, CSV, Excel) and the monthly
outpatient visit totals behind the grassroots share (the rules are in ``clinic.stats``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from yilian.server.clinic.stats import export, imports, service, visits
from yilian.server.clinic.stats.schemas import (
    StatsOut,
    StatsQuery,
    VisitImportOut,
    VisitTotalOut,
    VisitTotalsIn,
    VisitTotalsQuery,
)
from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.db import utcnow
from yilian.server.core.errors import ValidationFailed

router = ApiRouter()
TAG = "statistics"
CONTENT_TYPES = {"csv": "text/csv", "xlsx": imports.XLSX_TYPE}


@router.route("GET", "/api/stats", summary="The figures of an alliance, an institution (with "
              "include_below, and those under it) or everything the caller may read, in a "
              "period (Beijing months): consultations, referrals, green-channel intervals, "
              "teaching, visits and the grassroots share, by month and by institution; "
              "format=csv (UTF-8 with BOM) or xlsx for a spreadsheet", tag=TAG,
              query=StatsQuery, response=StatsOut)
async def get_stats(req: ApiRequest) -> Any:
    query: StatsQuery = req.query
    # ``format`` is read here rather than declared in the query model: the OpenAPI document
    # gives one content type per route, and this one's is the JSON.
    fmt = req.request.query.get("format", "json")
    if fmt not in ("json", "csv", "xlsx"):
        raise ValidationFailed("format is json, csv or xlsx", details={"errors": [
            {"loc": ["query", "format"], "msg": "expected json, csv or xlsx", "type": "enum"}]})
    async with req.db.read() as session:
        figures = await service.read(session, req.db, req.user, query, utcnow(), req.ip, fmt)
    body = figures.model_dump(mode="json", by_alias=True)
    if fmt == "json":
        return body
    data = (export.csv_bytes(body, req.user.locale) if fmt == "csv"
            else export.xlsx_bytes(body, req.user.locale))
    months = body["period"]["months"]
    name = f"yilian-stats-{months[0]}" + (f"-{months[-1]}" if len(months) > 1 else "")
    return web.Response(body=data, headers={
        "Content-Type": CONTENT_TYPES[fmt] + ("; charset=utf-8" if fmt == "csv" else ""),
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
        "Cache-Control": "no-store"})


@router.route("GET", "/api/stats/visits", summary="Monthly outpatient visit totals entered for "
              "a scope (as the statistics: coordinators their alliances, doctors their own "
              "institution)", tag=TAG, query=VisitTotalsQuery, response=list[VisitTotalOut])
async def list_visit_totals(req: ApiRequest) -> list[VisitTotalOut]:
    async with req.db.read() as session:
        return await visits.listing(session, req.user, req.query, req.ip)


@router.route("PUT", "/api/stats/visits", summary="Enter monthly outpatient visit totals "
              "(coordinators for their alliances' institutions, admins): all rows or none; "
              "a month entered again replaces its total", tag=TAG, body=VisitTotalsIn,
              response=list[VisitTotalOut])
async def put_visit_totals(req: ApiRequest) -> list[VisitTotalOut]:
    body: VisitTotalsIn = req.body
    rows = [(n, t.institution_id, t.month, t.visits) for n, t in enumerate(body.totals)]
    async with req.db.write() as session:
        totals = await visits.check(session, req.user, rows, "the totals were refused")
        return await visits.save(session, req.user, totals, req.ip, "update_visit_totals")


@router.route("POST", "/api/stats/visits/import", summary="Import monthly outpatient visit "
              "totals from a CSV file (text/csv) or an Excel workbook (.xlsx): columns "
              "institution_id or institution, month, visits; all rows or none, every bad row "
              "listed", tag=TAG, response=VisitImportOut)
async def import_visit_totals(req: ApiRequest) -> VisitImportOut:
    raw = await req.request.read()
    async with req.db.write() as session:
        totals = await imports.import_file(session, req.user, raw, req.request.content_type,
                                           req.ip)
    return VisitImportOut(imported=len(totals), totals=totals)
