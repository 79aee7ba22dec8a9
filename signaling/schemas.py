"""Response models of the signalling HTTP routes (they feed the OpenAPI document)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class IceServerOut(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class IceServersOut(BaseModel):
    """An RTCConfiguration.iceServers list; TURN credentials expire after ``ttl`` seconds."""

    iceServers: list[IceServerOut]  # noqa: N815 - the WebRTC name, kept for RTCConfiguration
    ttl: int = Field(description="seconds the TURN credentials stay valid")
