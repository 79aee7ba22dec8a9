"""The consultation workflow over HTTP: request, accept, decline, cancel, start, complete
(the rules are in ``clinic.consultations`` and ``clinic.workflow``)."""

from __future__ import annotations

from yilian.server.clinic import consultations
from yilian.server.clinic import keys as clinic_keys
from yilian.server.clinic.schemas import (
    AcceptIn,
    ConsultationIn,
    ConsultationOut,
    ConsultationsQuery,
    ConsultationWithChatOut,
    ReasonIn,
    StudyIn,
)
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("POST", "/api/consultations", summary="Request a remote consultation with a named "
              "expert (optionally in one of their free slots) or a specialty queue",
              tag="consultations", body=ConsultationIn, response=ConsultationOut, status=201)
async def create_consultation(req: ApiRequest) -> ConsultationOut:
    catalog = req.request.app[clinic_keys.STUDY_CATALOG]
    uids = await consultations.shareable_studies(req.db, catalog, req.user, req.body)
    return await req.db.write_fused(
        lambda session: consultations.create(session, req.user, req.body, uids, req.ip))


@router.route("GET", "/api/consultations", summary="Consultations the caller may see: their "
              "institution's requests, their assignments and their specialty queue",
              tag="consultations", query=ConsultationsQuery, response=list[ConsultationOut])
async def list_consultations(req: ApiRequest) -> list[ConsultationOut]:
    async with req.db.read() as session:
        return await consultations.list_visible(session, req.user, req.query, req.ip)


@router.route("GET", "/api/consultations/{id}", summary="One consultation with its history "
              "and the chat of its video room", tag="consultations",
              response=ConsultationWithChatOut)
async def get_consultation(req: ApiRequest) -> ConsultationWithChatOut:
    chat = req.request.app[clinic_keys.CHAT_LOG]
    async with req.db.read() as session:
        return await consultations.read(session, chat, req.user, req.path_id(), req.ip)


def _action_route(action: str, summary: str, body: type | None = None) -> None:
    path = f"/api/consultations/{{id}}/{action.replace('_', '-')}"

    async def handler(req: ApiRequest) -> ConsultationOut:
        consultation_id = req.path_id()
        return await consultations.take_action(
            req.db, req.user, consultation_id, action,
            slot_id=getattr(req.body, "slot_id", None),
            reason=getattr(req.body, "reason", None), ip=req.ip)

    handler.__name__ = f"{action}_consultation"
    router.route("POST", path, summary=summary, tag="consultations", body=body,  # type: ignore[arg-type]
                 response=ConsultationOut)(handler)


_action_route("accept", "Accept (the assigned expert or a queue specialist), optionally into "
              "one of the expert's slots", AcceptIn)
_action_route("decline", "Decline with a reason; the slot is freed", ReasonIn)
_action_route("cancel", "Cancel (the requester) with a reason; the slot is freed", ReasonIn)
_action_route("start", "Start the accepted consultation")
_action_route("no_show", "Record that the accepted consultation did not take place")
_action_route("complete", "Complete the consultation (its report must be signed)")


@router.route("POST", "/api/consultations/{id}/studies", summary="Share a DICOM study with the "
              "consultation", tag="consultations", body=StudyIn, response=ConsultationOut)
async def share_study(req: ApiRequest) -> ConsultationOut:
    body: StudyIn = req.body
    catalog = req.request.app[clinic_keys.STUDY_CATALOG]
    async with req.db.write() as session:
        return await consultations.share_study(session, catalog, req.user, req.path_id(),
                                               body.study_uid, req.ip)
