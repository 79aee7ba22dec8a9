"""A chat flood from its own process, as an attacker's machine would send it.

    python tests/signaling/flood.py <base url> <token> <room> <seconds>

Connects to ``/rtc`` over a raw websocket, joins ``room``, prints ``ready``, then sends chat
lines of 1.5 kB with ack ids as fast as the socket takes them for ``seconds``, waits for
every ack and prints one JSON line: ``{"sent", "codes": {code: count}, "seconds"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.signaling.raw import RawSocket  # noqa: E402


async def main(base_url: str, token: str, room: str, seconds: float) -> None:
    async with aiohttp.ClientSession() as http:
        sock = RawSocket()
        try:
            assert (await sock.connect(http, base_url, token)).startswith("40/rtc,{")
            assert (await sock.call("join", {"room": room}))["ok"]
            print("ready", flush=True)
            acks = []
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                i = len(acks) + 1
                acks.append(sock.expect_ack(i))
                frame = json.dumps(["chat", {"room": room, "text": f"line {i} " + "x" * 1500}])
                await sock.send(f"42/rtc,{i}{frame}")
            answers = await asyncio.wait_for(asyncio.gather(*acks), 120)
            codes = Counter("ok" if a["ok"] else a["error"]["code"] for a in answers)
            print(json.dumps({"sent": len(acks), "codes": codes,
                              "seconds": time.monotonic() - started}), flush=True)
        finally:
            await sock.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
