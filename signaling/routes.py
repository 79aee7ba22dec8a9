"""HTTP routes of the signalling subsystem."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from yilian.server.core.api import ApiRequest, ApiRouter
from yilian.server.core.models import User
from yilian.signaling.models import RtcChatMessage
from yilian.signaling.schemas import IceServersOut
from yilian.signaling.turn import ice_servers

router = ApiRouter()


@router.route(
    "GET",
    "/api/rtc/ice-servers",
    summary="STUN/TURN servers for RTCPeerConnection, with short-lived coturn REST credentials",
    tag="rtc",
    response=IceServersOut,
)
async def get_ice_servers(req: ApiRequest) -> IceServersOut:
    settings = req.settings
    body = ice_servers(
        user_id=req.user.id,
        stun_urls=settings.rtc.stun_urls,
        turn_urls=settings.rtc.turn_urls,
        turn_secret=settings.rtc.turn_secret,
        ttl_seconds=settings.rtc.turn_ttl_seconds,
    )
    return IceServersOut.model_validate(body)


class RoomChatLog:
    """``yilian.server.clinic.ports.ChatLog``: the chat kept with consultation rooms."""

    async def messages(self, session: AsyncSession, consultation_id: int) -> list[dict[str, Any]]:
        """The chat of a consultation's video room, oldest first."""
        rows = await session.execute(
            select(RtcChatMessage, User.display_name)
            .join(User, User.id == RtcChatMessage.user_id)
            .where(RtcChatMessage.consultation_id == consultation_id)
            .order_by(RtcChatMessage.id)
        )
        return [{"peer_id": m.peer_id, "user_id": m.user_id, "display_name": name,
                 "text": m.text, "at": m.at} for m, name in rows]
