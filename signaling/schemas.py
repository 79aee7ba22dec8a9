"""Response models of the signalling HTTP routes (they feed the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from server.schemas import ConsultationOut


class IceServerOut(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class IceServersOut(BaseModel):
    """An RTCConfiguration.iceServers list; TURN credentials expire after ``ttl`` seconds."""

    iceServers: list[IceServerOut]  # noqa: N815 - the WebRTC name, kept for RTCConfiguration
    ttl: int = Field(description="seconds the TURN credentials stay valid")


class ChatMessageOut(BaseModel):
    """A chat line of a video room, as kept with the consultation."""

    peer_id: str
    user_id: int
    display_name: str
    text: str
    at: datetime


class ConsultationWithChatOut(ConsultationOut):
    """One consultation with the chat of its video room."""

    chat: list[ChatMessageOut]
