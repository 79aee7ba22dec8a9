"""HTTP routes of the signalling subsystem."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.api import ApiRequest, ApiRouter
from server.models import User
from signaling.models import RtcChatMessage
from signaling.schemas import ChatMessageOut, IceServersOut
from signaling.turn import ice_servers

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
        stun_urls=settings.stun_urls,
        turn_urls=settings.turn_urls,
        turn_secret=settings.turn_secret,
        ttl_seconds=settings.turn_ttl_seconds,
    )
    return IceServersOut.model_validate(body)


async def consultation_chat(session: AsyncSession, consultation_id: int) -> list[ChatMessageOut]:
    """The chat of a consultation's video room, oldest first."""
    rows = await session.execute(
        select(RtcChatMessage, User.display_name)
        .join(User, User.id == RtcChatMessage.user_id)
        .where(RtcChatMessage.consultation_id == consultation_id)
        .order_by(RtcChatMessage.id)
    )
    return [
        ChatMessageOut(
            peer_id=m.peer_id, user_id=m.user_id, display_name=name, text=m.text, at=m.at
        )
        for m, name in rows
    ]
