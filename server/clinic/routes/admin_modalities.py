"""The modalities of the C-STORE SCP over HTTP (the rules are in ``clinic.admin.modalities``;
the table in the DICOM package, reached through the app's ``MODALITY_TABLE``)."""

from __future__ import annotations

from yilian.server.clinic.admin import modalities
from yilian.server.clinic.admin.modalities import MODALITY_TABLE
from yilian.server.clinic.admin.schemas import ModalityIn, ModalityOut, ModalityPatch
from yilian.server.core.api import ApiRequest, ApiRouter

router = ApiRouter()


@router.route("GET", "/api/modalities", summary="The modalities (calling AE titles) of the "
              "institutions the caller keeps, with the addresses each may call from",
              tag="administration", response=list[ModalityOut])
async def list_modalities(req: ApiRequest) -> list[ModalityOut]:
    async with req.db.read() as session:
        return await modalities.list_modalities(session, req.request.app[MODALITY_TABLE],
                                                req.user)


@router.route("POST", "/api/modalities", summary="Register a modality; the SCP accepts it at "
              "its next association", tag="administration", body=ModalityIn,
              response=ModalityOut, status=201)
async def add_modality(req: ApiRequest) -> ModalityOut:
    async with req.db.write() as session:
        return await modalities.add_modality(session, req.request.app[MODALITY_TABLE],
                                             req.user, req.body, req.ip)


@router.route("PATCH", "/api/modalities/{id}", summary="Change a modality's institution, "
              "description or addresses", tag="administration", body=ModalityPatch,
              response=ModalityOut)
async def change_modality(req: ApiRequest) -> ModalityOut:
    async with req.db.write() as session:
        return await modalities.change_modality(session, req.request.app[MODALITY_TABLE],
                                                req.user, req.path_id(), req.body, req.ip)


@router.route("DELETE", "/api/modalities/{id}", summary="Take a modality off the table: its "
              "next association is refused", tag="administration", status=204)
async def remove_modality(req: ApiRequest) -> None:
    async with req.db.write() as session:
        await modalities.remove_modality(session, req.request.app[MODALITY_TABLE], req.user,
                                         req.path_id(), req.ip)
