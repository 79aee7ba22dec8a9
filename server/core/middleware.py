"""Middlewares: the JSON error shape for every failure, and request metrics."""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError, IntegrityError

from yilian.server.core.errors import InsufficientStorage, YilianError, error_body
from yilian.server.core.metrics import Metrics

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_error", 429: "too_many_requests",
    503: "service_unavailable", 507: "insufficient_storage",
}
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_PG_DISK_FULL = "53100"


def _storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` or what it was raised from or during means the disk is full: ENOSPC or
    EDQUOT from the OS, SQLite's SQLITE_FULL ("database or disk is full"), PostgreSQL's
    disk_full. Wrappers (SQLAlchemy's, ``raise ... from None`` in the audit log) are looked
    through."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen or len(seen) > 20:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if isinstance(e, sqlite3.Error) and (
                (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL
                or "database or disk is full" in str(e)):
            return True
        if getattr(e, "sqlstate", None) == _PG_DISK_FULL:
            return True
        orig = getattr(e, "orig", None)  # sqlalchemy.exc.DBAPIError
        todo += [e.__cause__, e.__context__, orig if isinstance(orig, BaseException) else None]
    return False


def _full(request: web.Request) -> web.Response:
    logger.error("the disk is full: %s %s refused with 507", request.method, request.path)
    return web.json_response(InsufficientStorage(
        "the server's storage is full; the request was not carried out (nothing was "
        "stored); try again later").to_json(),
        status=InsufficientStorage.status)


def error_response(status: int, code: str, message: str, details: dict | None = None
                   ) -> web.Response:
    """The one JSON error shape."""
    return web.json_response(error_body(code, message, details or {}), status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map domain errors and aiohttp's HTTP errors to JSON; never leak a traceback."""
    try:
        return await handler(request)
    except YilianError as exc:
        if exc.status >= 500 and _storage_full(exc):  # e.g. the audit journal on a full disk
            return _full(request)
        return web.json_response(exc.to_json(), status=exc.status)
    except IntegrityError as exc:
        # A uniqueness or reference rule the checks before the write did not catch (a change
        # made at the same moment): the transaction was rolled back, nothing was stored. Not
        # the statement's parameters in the log: they may hold patient data or hashes.
        logger.warning("integrity conflict on %s %s (%s)", request.method, request.path,
                       type(exc.orig).__name__)
        return error_response(409, "conflict", "this conflicts with a change made at the same "
                              "moment; nothing was stored; reload and try again")
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            return _unexpected(request, exc)
        # The database went away under this request (a restart, a network cut): the pool has
        # dropped every older connection, so the next request connects afresh.
        logger.warning("database connection lost on %s %s (%s)", request.method, request.path,
                       type(exc.orig).__name__)
        return error_response(503, "database_unavailable", "the connection to the database "
                              "was lost; nothing was stored; try again")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.text is None or exc.text.startswith(str(exc.status)) \
            else exc.text
        resp = error_response(exc.status, code, message)
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception as exc:
        return _unexpected(request, exc)


def _unexpected(request: web.Request, exc: Exception) -> web.Response:
    """507 for a full disk, else 500 with the traceback logged (call it from the ``except``)."""
    if _storage_full(exc):
        return _full(request)
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "the server failed; this has been logged")


def metrics_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Count requests and time them by route template and status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            metrics.observe(request.method, route, status, time.perf_counter() - start)

    return middleware
