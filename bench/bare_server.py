"""The baseline for api_bench: a bare aiohttp app answering the booking flow's four requests
with fixed JSON from memory (no auth, no database, no validation)."""

from __future__ import annotations

import json
import sys

from aiohttp import web


def make_app(responses: dict[str, object]) -> web.Application:
    """Routes shaped like Yilian's, returning the recorded bodies."""
    bodies = {k: json.dumps(v).encode() for k, v in responses.items()}

    def fixed(key: str, status: int = 200):  # type: ignore[no-untyped-def]
        async def handler(request: web.Request) -> web.Response:
            if request.method == "POST" and request.can_read_body:
                await request.read()
            return web.Response(body=bodies[key], status=status,
                                content_type="application/json")
        return handler

    app = web.Application()
    app.router.add_get("/api/experts", fixed("experts"))
    app.router.add_get("/api/experts/{id}/slots", fixed("slots"))
    app.router.add_post("/api/consultations", fixed("book", 201))
    app.router.add_post("/api/consultations/{id}/accept", fixed("accept"))
    return app


if __name__ == "__main__":
    recorded = json.load(open(sys.argv[1]))
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # listening before we say so
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    web.run_app(make_app(recorded), sock=sock, print=None, access_log=None)
