"""Room state as pure code: membership, lobby, polite roles, resume and its grace period.

Nothing here does I/O. A store (``signaling.store``) loads a ``RoomState`` under a per-room
lock, calls one of these functions and saves the result; the namespace turns the returned
outcome into socket.io emits. Tested directly in ``tests/signaling/test_rooms.py``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from yilian.server.core.api import MAX_ID
from yilian.signaling.errors import (
    Forbidden,
    InvalidPayload,
    NotInRoom,
    NotWaiting,
    RoomFull,
    TooManyTabs,
    UnknownPeer,
)

RoomKind = Literal["consultation", "teaching"]

#: Mesh calls stop being usable on a village clinic's uplink beyond this many peers.
CONSULTATION_CAPACITY = 6
#: Teaching rooms: viewers receive from the broadcast relay (``sfu``) and send no media.
TEACHING_CAPACITY = 1000
#: Peers one user may hold at once in a teaching room (tabs, devices): seats are for people.
MAX_PEERS_PER_USER = 3
#: The broadcast relay's reserved peer id (api.md "Teaching broadcast").
SFU_PEER_ID = "sfu"

# A room is named by its object's integer key written one way only: ASCII digits, no sign, no
# leading zero. "consultation:01" or "consultation:\u0661" (an Arabic-Indic one, which int()
# and str.isdigit() accept) would otherwise be a second room of consultation 1, with its own
# lobby and its own six seats.
_ROOM_RE = re.compile(r"(consultation|teaching):([1-9][0-9]{0,9})", re.ASCII)


@dataclass(frozen=True)
class RoomRef:
    """A parsed room name such as ``consultation:42``."""

    kind: RoomKind
    object_id: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.object_id}"

    @property
    def capacity(self) -> int:
        return CONSULTATION_CAPACITY if self.kind == "consultation" else TEACHING_CAPACITY

    @property
    def per_user(self) -> int | None:
        """Peers one user may hold here at once; ``None``: no limit (a consultation's mesh
        is bounded by its capacity already)."""
        return MAX_PEERS_PER_USER if self.kind == "teaching" else None


def parse_room(value: Any) -> RoomRef:
    """Validate a room name; raises ``InvalidPayload`` naming what was wrong."""
    if not isinstance(value, str):
        raise InvalidPayload('"room" must be a string like "consultation:<id>"')
    match = _ROOM_RE.fullmatch(value)
    if match is None or int(match.group(2)) > MAX_ID:
        raise InvalidPayload(
            f'unknown room "{value[:80]}": expected "consultation:<id>" or "teaching:<id>", '
            f"the id a number from 1 to {MAX_ID} in ASCII digits without leading zeros"
        )
    kind: RoomKind = "consultation" if match.group(1) == "consultation" else "teaching"
    return RoomRef(kind, match.group(2))


@dataclass(frozen=True)
class Identity:
    """Who is joining: the authenticated user and whether they host this room."""

    user_id: int | str
    display_name: str
    role: str
    host: bool = False


@dataclass
class Peer:
    """One connection's presence in a room; the peer id survives a resume."""

    peer_id: str
    user_id: int | str
    display_name: str
    role: str
    host: bool
    seq: int
    sid: str | None
    admitted: bool = True
    connected: bool = True
    suspended_until: float | None = None

    def public(self) -> dict[str, Any]:
        """The shape other peers see (api.md ``peer-joined``)."""
        return {
            "peer_id": self.peer_id,
            "user_id": self.user_id,
            "display_name": self.display_name,
            "role": self.role,
        }

    def public_for(self, viewer: Peer) -> dict[str, Any]:
        """``public()`` plus whether ``viewer`` should be the polite side towards this peer."""
        return {**self.public(), "polite": is_polite(viewer, self)}


def is_polite(me: Peer, other: Peer) -> bool:
    """Perfect negotiation roles: the later joiner of a pair is polite (stable across resume)."""
    return me.seq > other.seq


@dataclass
class RoomState:
    """Everything the server remembers about one room."""

    name: str
    peers: dict[str, Peer] = field(default_factory=dict)
    lobby: bool = False
    next_seq: int = 0
    # Teaching rooms: the process holding the broadcast, the presenting peer, whether its
    # media flows (join acks say so; requests for the relay are sent to ``sfu_host``).
    sfu_host: str | None = None
    presenter: str | None = None
    live: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lobby": self.lobby,
            "next_seq": self.next_seq,
            "peers": [asdict(p) for p in self.peers.values()],
            "sfu_host": self.sfu_host,
            "presenter": self.presenter,
            "live": self.live,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoomState:
        peers = {p["peer_id"]: Peer(**p) for p in data.get("peers", [])}
        return cls(data["name"], peers, bool(data.get("lobby")), int(data.get("next_seq", 0)),
                   data.get("sfu_host"), data.get("presenter"), bool(data.get("live")))

    @property
    def empty(self) -> bool:
        return not self.peers

    def members(self) -> list[Peer]:
        """Admitted peers, connected or within their grace period, in join order."""
        return sorted((p for p in self.peers.values() if p.admitted), key=lambda p: p.seq)

    def waiting(self) -> list[Peer]:
        return sorted((p for p in self.peers.values() if not p.admitted), key=lambda p: p.seq)

    def member(self, peer_id: str) -> Peer:
        """An admitted peer by id, or ``UnknownPeer``."""
        peer = self.peers.get(peer_id)
        if peer is None or not peer.admitted:
            raise UnknownPeer(f'no peer "{peer_id[:80]}" in room {self.name}')
        return peer

    def member_by_sid(self, sid: str) -> Peer:
        """The admitted peer this socket holds, or ``NotInRoom``."""
        for peer in self.peers.values():
            if peer.sid == sid and peer.admitted:
                return peer
        raise NotInRoom(f"you have not joined {self.name}")

    def host_by_sid(self, sid: str) -> Peer:
        peer = self.member_by_sid(sid)
        if not peer.host:
            raise Forbidden(f"only the host of {self.name} may manage its lobby")
        return peer


@dataclass
class JoinOutcome:
    """What a join did: the caller's peer, whom to tell, and who expired on the way."""

    peer: Peer
    resumed: bool
    peers: list[Peer]
    expired: list[Peer]

    @property
    def waiting(self) -> bool:
        return not self.peer.admitted


def new_peer_id() -> str:
    """Unguessable, since a peer id is what a resume presents."""
    return secrets.token_urlsafe(12)


def expire_suspended(state: RoomState, now: float) -> list[Peer]:
    """Drop peers whose grace period has ended; returns them so others get ``peer-left``."""
    gone = [
        p
        for p in state.peers.values()
        if not p.connected and p.suspended_until is not None and p.suspended_until <= now
    ]
    for peer in gone:
        del state.peers[peer.peer_id]
    return gone


def join(
    state: RoomState,
    capacity: int,
    who: Identity,
    sid: str,
    now: float,
    resume: str | None = None,
    per_user: int | None = None,
) -> JoinOutcome:
    """Add (or resume) a peer. Lobby-held peers are not members until a host admits them.

    With ``per_user`` (teaching rooms) the room is an audience with a presenter: a host never
    finds it full (their seat is kept: the others fill ``capacity - 1``), and one user holds
    at most ``per_user`` connected peers, so many tabs cannot take the seats."""
    expired = expire_suspended(state, now)
    if resume is not None:
        held = state.peers.get(resume)
        if held is not None and held.user_id == who.user_id:
            held.sid = sid
            held.connected = True
            held.suspended_until = None
            others = (
                [p for p in state.members() if p.peer_id != held.peer_id] if held.admitted else []
            )
            return JoinOutcome(held, True, others, expired)
    if any(p.sid == sid for p in state.peers.values()):
        raise InvalidPayload(f"this connection has already joined {state.name}")
    if per_user is not None:
        own = sum(1 for p in state.peers.values() if p.user_id == who.user_id and p.connected)
        if own >= per_user:
            raise TooManyTabs(f"you already have {own} connections in {state.name}; "
                              "close one to join here")
    admitted = who.host or not state.lobby
    if per_user is not None:
        if admitted and not who.host and (
                sum(1 for p in state.members() if not p.host) >= capacity - 1):
            raise RoomFull(f"{state.name} already has {capacity} participants")
    elif admitted and len(state.members()) >= capacity:
        raise RoomFull(f"{state.name} already has {capacity} participants")
    peer = Peer(
        peer_id=new_peer_id(),
        user_id=who.user_id,
        display_name=who.display_name,
        role=who.role,
        host=who.host,
        seq=state.next_seq,
        sid=sid,
        admitted=admitted,
    )
    state.next_seq += 1
    state.peers[peer.peer_id] = peer
    others = [p for p in state.members() if p.peer_id != peer.peer_id] if admitted else []
    return JoinOutcome(peer, False, others, expired)


def leave(state: RoomState, sid: str) -> Peer | None:
    """Remove whatever this socket holds in the room; ``None`` when it held nothing."""
    for peer in list(state.peers.values()):
        if peer.sid == sid:
            del state.peers[peer.peer_id]
            return peer
    return None


def suspend(state: RoomState, sid: str, until: float) -> Peer | None:
    """The socket dropped: keep its peer for a grace period. ``None`` if already rebound."""
    for peer in state.peers.values():
        if peer.sid == sid:
            peer.connected = False
            peer.sid = None
            peer.suspended_until = until
            return peer
    return None


def _seat(state: RoomState, peer: Peer) -> None:
    """Admission makes the peer the newest member, hence polite towards everyone present."""
    peer.admitted = True
    peer.seq = state.next_seq
    state.next_seq += 1


def admit(state: RoomState, capacity: int, host_sid: str, peer_id: str) -> tuple[Peer, list[Peer]]:
    """A host lets a lobby peer in; returns it and the members it now sees."""
    state.host_by_sid(host_sid)
    peer = state.peers.get(peer_id)
    if peer is None or peer.admitted:
        raise NotWaiting(f'no peer "{peer_id[:80]}" is waiting in the lobby of {state.name}')
    if len(state.members()) >= capacity:
        raise RoomFull(f"{state.name} already has {capacity} participants")
    others = state.members()
    _seat(state, peer)
    return peer, others


def refuse(state: RoomState, host_sid: str, peer_id: str) -> Peer:
    """A host turns a lobby peer away; the peer is removed."""
    state.host_by_sid(host_sid)
    peer = state.peers.get(peer_id)
    if peer is None or peer.admitted:
        raise NotWaiting(f'no peer "{peer_id[:80]}" is waiting in the lobby of {state.name}')
    del state.peers[peer_id]
    return peer


def evict(state: RoomState, sids: Collection[str]) -> list[Peer]:
    """The room closed: remove the peers of these sockets and every peer held for a dropped
    socket (nobody may resume into it); returns those removed."""
    gone = [p for p in state.peers.values() if p.sid is None or p.sid in sids]
    for peer in gone:
        del state.peers[peer.peer_id]
    return gone


def set_lobby(state: RoomState, capacity: int, host_sid: str, enabled: bool) -> list[Peer]:
    """Only a host switches the lobby. Turning it off admits whoever waits, while seats last."""
    state.host_by_sid(host_sid)
    state.lobby = enabled
    admitted: list[Peer] = []
    if not enabled:
        for peer in state.waiting():
            if len(state.members()) >= capacity:
                break
            _seat(state, peer)
            admitted.append(peer)
    return admitted
