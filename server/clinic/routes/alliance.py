"""Institutions, alliances, experts, their availability and slots over HTTP (the rules are
in ``clinic.directory`` and ``clinic.availability``)."""

from __future__ import annotations

from yilian.server.clinic import availability, directory
from yilian.server.clinic.schemas import (
    AllianceOut,
    AvailabilityIn,
    AvailabilityOut,
    ExpertOut,
    ExpertsQuery,
    InstitutionOut,
    InstitutionsQuery,
    SlotOut,
    SlotsQuery,
)
from yilian.server.core.api import ApiRequest, ApiRouter, JsonRows

router = ApiRouter()


@router.route("GET", "/api/institutions", summary="Institutions, by level or alliance",
              tag="alliance", query=InstitutionsQuery, response=list[InstitutionOut])
async def list_institutions(req: ApiRequest) -> list[InstitutionOut]:
    async with req.db.read() as session:
        return await directory.institutions(session, req.query)


@router.route("GET", "/api/alliances", summary="Alliances and their members", tag="alliance",
              response=list[AllianceOut])
async def list_alliances(req: ApiRequest) -> list[AllianceOut]:
    async with req.db.read() as session:
        return await directory.alliances(session)


@router.route("GET", "/api/experts", summary="Experts by specialty and institution, with their "
              "next free slots; experts in the caller's alliances first", tag="alliance",
              query=ExpertsQuery, response=list[ExpertOut])
async def list_experts(req: ApiRequest) -> JsonRows:
    return await req.db.read_sync(lambda session: directory.experts(session, req.user, req.query))


@router.route("GET", "/api/experts/{id}/slots", summary="An expert's slots in a time range "
              "(default: the next 14 days)", tag="alliance", query=SlotsQuery,
              response=list[SlotOut])
async def list_slots(req: ApiRequest) -> JsonRows:
    expert_id = req.path_id()
    return await req.db.read_sync(lambda session: availability.slots(session, expert_id,
                                                                     req.query))


@router.route("GET", "/api/experts/{id}/availability", summary="An expert's weekly rules and "
              "exceptions", tag="alliance", response=AvailabilityOut)
async def get_availability(req: ApiRequest) -> AvailabilityOut:
    async with req.db.read() as session:
        return await availability.read(session, req.path_id(), req.user)


@router.route("PUT", "/api/experts/{id}/availability", summary="Replace an expert's weekly rules "
              "and exceptions; free slots are regenerated, booked ones kept", tag="alliance",
              body=AvailabilityIn, response=AvailabilityOut)
async def put_availability(req: ApiRequest) -> AvailabilityOut:
    async with req.db.write() as session:
        return await availability.replace(session, req.user, req.path_id(), req.body,
                                          req.settings.clinic.slot_horizon_days)
