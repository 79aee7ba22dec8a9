"""Glare: both sides offer at the same instant; perfect negotiation must end connected."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.signaling.conftest import MakeClient, connected_pair, until

ROUNDS = 20


async def test_simultaneous_offers_connect_twenty_times_in_a_row(
    doctors: dict[str, Any], rooms: dict[str, str], make_client: MakeClient
) -> None:
    room = rooms["village"]
    expert = await make_client(doctors["expert"], auto_negotiate=False)
    village = await make_client(doctors["village"], auto_negotiate=False)
    for round_no in range(ROUNDS):
        await expert.join(room)
        newcomer = (await village.join(room))["peer_id"]
        await until(lambda newcomer=newcomer: newcomer in expert.links)
        impolite = expert.links[newcomer]
        polite = next(iter(village.links.values()))
        assert polite.polite and not impolite.polite, round_no

        await asyncio.gather(impolite.negotiate(), polite.negotiate())
        await connected_pair(village, expert)

        # Both offered; the impolite side ignored the colliding offer and the polite side
        # rolled its own back (a fresh connection, since aiortc has no rollback).
        assert impolite.ignored_offers == 1 and impolite.rollbacks == 0, round_no
        assert polite.rollbacks == 1 and polite.ignored_offers == 0, round_no
        assert polite.state == impolite.state == "connected", round_no
        assert polite.messages == ["hello from expert"] and impolite.messages == [
            "hello from village"
        ]

        assert (await village.leave())["ok"] and (await expert.leave())["ok"]
    assert not [e for e, _ in village.events + expert.events if e == "resume"]
