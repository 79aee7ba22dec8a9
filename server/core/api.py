"""The JSON API's route registry: request parsing, response shaping and the OpenAPI document.

Every ``/api`` route is declared through :class:`ApiRouter`, so the OpenAPI document is
generated from the same models that validate requests and shape responses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, get_args, get_origin

import orjson
from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from yilian.server.core import keys
from yilian.server.core.auth import authenticate
from yilian.server.core.db import Database
from yilian.server.core.errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from yilian.server.core.models import User
from yilian.server.core.schemas import MAX_ID, ascii_int
from yilian.server.core.settings import Settings

#: How deep a JSON body may nest (the deepest request model nests three levels).
MAX_JSON_DEPTH = 32
#: Arrays and objects a JSON body may hold (the largest request model holds about 250):
#: building a million empty lists takes the parser a second, during which nothing else runs.
MAX_JSON_CONTAINERS = 10_000
#: Validation errors listed in a 422 (a 100,000-item list could otherwise list them all).
MAX_LISTED_ERRORS = 20


@dataclass
class ApiRequest:
    """What a handler gets: the parsed body and query, the caller, and the resources."""

    request: web.Request
    user: User
    body: Any = None
    query: Any = None

    @property
    def db(self) -> Database:
        return self.request.app[keys.DATABASE]

    @property
    def settings(self) -> Settings:
        return self.request.app[keys.SETTINGS]

    @property
    def ip(self) -> str | None:
        return self.request.remote

    def path_id(self, name: str = "id") -> int:
        """An integer id from the path (ASCII digits, 1..2**31-1); anything else is a 404."""
        raw = self.request.match_info[name]
        value = ascii_int(raw, 1, MAX_ID)
        if value is None:
            raise NotFound(f"no such {name.removesuffix('_id') or 'resource'}: {raw[:40]!r}")
        return value


Handler = Callable[[ApiRequest], Awaitable[Any]]


@dataclass
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    auth: bool = True
    content_type: str = "application/json"
    body_required: bool = True


def _validation_details(exc: ValidationError) -> dict[str, Any]:
    errors = exc.errors(include_url=False, include_input=False)
    details: dict[str, Any] = {
        "errors": [
            {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in errors[:MAX_LISTED_ERRORS]
        ]
    }
    if len(errors) > MAX_LISTED_ERRORS:
        details["more_errors"] = len(errors) - MAX_LISTED_ERRORS
    return details


class _BadJson(ValueError):
    """JSON that parses but that no request may carry."""


def _no_constant(name: str) -> Any:
    raise _BadJson(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _BadJson(f"the number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Which of two values a key means is up to each parser: refuse rather than guess.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BadJson(f"the key {key[:40]!r} appears twice in one object")
            seen.add(key)
    return obj


def loads_strict(raw: bytes) -> Any:
    """Parse request JSON: NaN, Infinity, numbers beyond a double (1e400), duplicate keys and
    nesting deeper than ``MAX_JSON_DEPTH`` are refused (400 ``invalid_json``), and so is text
    PostgreSQL cannot store (422); more than ``MAX_JSON_CONTAINERS`` arrays and objects are
    refused before parsing. Each check runs at C speed over the whole body."""
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_CONTAINERS and \
            _skeleton(raw).count(b"[") > MAX_JSON_CONTAINERS:
        raise BadRequest(f"the JSON body holds more than {MAX_JSON_CONTAINERS} arrays and "
                         "objects", code="invalid_json",
                         details={"max_containers": MAX_JSON_CONTAINERS})
    try:
        parsed = json.loads(raw, parse_constant=_no_constant, parse_float=_finite,
                            object_pairs_hook=_unique_keys)
    except RecursionError:  # the parser gave up nesting long before running out of stack
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:200]}", code="invalid_json"
                         ) from None
    if _nests_too_deep(raw):
        raise _too_deep()
    # Unstorable text can only come as a \u escape (a raw NUL is not JSON, a lone surrogate
    # not UTF-8).
    if _SUSPECT_ESCAPE.search(raw) and _has_unstorable_text(parsed):
        if len(raw) <= 65536:  # where, for a body small enough to walk
            _refuse_unstorable(parsed, ["body"])
        raise _refuse_text(["body"])
    return parsed


_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# An escaped NUL in json.dumps output: \u0000 after an even number of backslashes.
_DUMPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _skeleton(raw: bytes) -> bytes:
    """The brackets of a JSON text outside its strings, all written ``[`` and ``]``."""
    return _JSON_STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)


def _nests_too_deep(raw: bytes) -> bool:
    """Whether a valid JSON text nests deeper than ``MAX_JSON_DEPTH``: its brackets lose one
    level per pass of removing every innermost pair."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    skeleton = _skeleton(raw)
    for _ in range(MAX_JSON_DEPTH):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"[]", b"")
    return bool(skeleton)


def _has_unstorable_text(parsed: Any) -> bool:
    dumped = json.dumps(parsed, ensure_ascii=False)
    if _DUMPED_NUL.search(dumped):
        return True
    try:
        dumped.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def _too_deep() -> BadRequest:
    return BadRequest(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels",
                      code="invalid_json", details={"max_depth": MAX_JSON_DEPTH})


async def parse_json_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Validate a JSON body strictly against ``model``: wrong types and unknown fields fail."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "send the body as application/json", details={"content_type": request.content_type}
        )
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("a JSON body is required", code="invalid_json")
    loads_strict(raw)
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise ValidationFailed(
            "the body does not match the expected shape", details=_validation_details(exc)
        ) from None


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
        return True
    return False


def _refuse_text(loc: list[str]) -> ValidationFailed:
    return ValidationFailed(
        "text may not contain NUL characters or unpaired surrogates",
        details={"errors": [{"loc": loc, "msg": "unstorable character", "type": "string_nul"}]})


_Path = tuple[Any, Any] | None  # (parent path, key): a location spelled out only if needed


def _spell(loc: list[str], path: _Path, key: Any = None) -> list[str]:
    parts = [] if key is None else [str(key)]
    while path is not None:
        path, part = path
        parts.append(str(part))
    return [*loc, *reversed(parts)]


def _refuse_unstorable(value: Any, loc: list[str]) -> None:
    """Refuse NUL characters and lone surrogates anywhere in ``value`` (keys included),
    naming where: PostgreSQL text cannot store them, so 422 up front rather than the
    database failing the request later. A loop, not recursion."""
    if isinstance(value, str):
        if _unstorable(value):
            raise _refuse_text(loc)
        return
    stack: list[tuple[Any, _Path]] = [(value, None)]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict | list):
            continue
        for key, item in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(key, str) and _unstorable(key):
                raise _refuse_text(_spell(loc, path))
            if isinstance(item, str):
                if _unstorable(item):
                    raise _refuse_text(_spell(loc, path, key))
            else:
                stack.append((item, (path, key)))


def parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Validate query parameters (strings coerced) against ``model``; unknown ones ignored."""
    names = {f.alias or n for n, f in model.model_fields.items()}
    data = {k: v for k, v in request.query.items() if k in names}
    _refuse_unstorable(data, ["query"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            "the query parameters are invalid", details=_validation_details(exc)
        ) from None


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value


@cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


class JsonRows(list[dict[str, Any]]):
    """A list answer already in plain JSON types (dicts of str, int, bool, None, UTC datetimes),
    for the longest lists: orjson encodes it in one call, with no model built per row. The route
    still declares its response model (the OpenAPI document, the contract); datetimes come out
    as pydantic writes them (``…Z``)."""


def _encode(value: Any) -> bytes:
    """A handler's answer as JSON: models (and lists of one model, the busy lists) serialized
    by pydantic's own encoder in one call; anything else through orjson."""
    if isinstance(value, JsonRows):
        return orjson.dumps(value, option=orjson.OPT_UTC_Z)
    if isinstance(value, BaseModel):
        return value.model_dump_json().encode()
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        model = type(value[0])
        if all(type(v) is model for v in value):
            return _list_of(model).dump_json(value)
    return orjson.dumps(_dump(value), option=orjson.OPT_NON_STR_KEYS)


def _json_response(body: bytes, status: int) -> web.Response:
    """JSON as UTF-8 as is (orjson and pydantic both write it several times faster than
    ``json`` on the lists the busiest routes return: experts, slots, consultations)."""
    return web.Response(body=body, status=status, content_type="application/json",
                        charset="utf-8")


class ApiRouter:
    """Collects routes with their models; adds them to an app and describes them."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        auth: bool = True,
        content_type: str = "application/json",
        body_required: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Declare a handler for ``method path``; with ``body_required=False`` an empty body
        is allowed (the handler then gets ``body=None``)."""

        def decorate(fn: Handler) -> Handler:
            self.routes.append(
                Route(method, path, fn, summary, tag, body, query, response, status, auth,
                      content_type, body_required)
            )
            return fn

        return decorate

    def include(self, other: ApiRouter) -> None:
        """Take over another router's routes."""
        self.routes.extend(other.routes)

    def add_to(self, app: web.Application) -> None:
        """Register every route on the app."""
        for route in self.routes:
            app.router.add_route(route.method, route.path, _make_handler(route))


def _make_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        user = await authenticate(request) if route.auth else None
        api_request = ApiRequest(request, user)  # type: ignore[arg-type]
        if route.query is not None:
            api_request.query = parse_query(request, route.query)
        if route.body is not None and (route.body_required or (await request.read()).strip()):
            api_request.body = await parse_json_body(request, route.body)
        result = await route.handler(api_request)
        if isinstance(result, web.StreamResponse):
            return result
        if route.status == 204:
            return web.Response(status=204)
        return _json_response(_encode(result), route.status)

    handler.__name__ = route.handler.__name__
    return handler


# --- OpenAPI -------------------------------------------------------------------------------

ERROR_STATUSES = {
    "400": "Malformed request",
    "401": "Missing, invalid, expired or revoked token",
    "403": "Not allowed for this role or institution",
    "404": "No such resource, or not visible to this user",
    "409": "Conflicts with the resource's state",
    "413": "Request body too large",
    "415": "Unsupported content type",
    "422": "The body or query does not validate",
    "429": "Too many requests",
    "503": "A dependency (database, audit journal) is unavailable; try again later",
    "507": "The server's storage is full; nothing was stored",
}


class _ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class Error(BaseModel):
    """The shape of every error response."""

    error: _ErrorBody


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _schema_for(annotation: Any, refs: dict[Any, Any], mode: str) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return refs[(annotation, mode)]
    if get_origin(annotation) is list:
        return {"type": "array", "items": _schema_for(get_args(annotation)[0], refs, mode)}
    raise TypeError(f"cannot describe {annotation!r}")


def openapi_document(router: ApiRouter, *, title: str, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document generated from the registered routes and their models."""
    wanted: set[tuple[type[BaseModel], str]] = {(Error, "serialization")}
    for r in router.routes:
        if r.body is not None:
            wanted.add((r.body, "validation"))
        for m in _models_in(r.response):
            wanted.add((m, "serialization"))
    refs, defs = models_json_schema(
        sorted(wanted, key=lambda t: (t[0].__name__, t[1])),  # type: ignore[arg-type]
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for r in router.routes:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": r.handler.__name__,
            "tags": [r.tag],
            "responses": {},
        }
        params = [
            {"name": seg[1:-1], "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1}}
            for seg in r.path.split("/")
            if seg.startswith("{")
        ]
        if r.query is not None:
            qschema = r.query.model_json_schema()
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                params.append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {
                "required": r.body_required,
                "content": {"application/json": {"schema": refs[(r.body, "validation")]}},
            }
        if r.auth:
            op["security"] = [{"bearer": []}]
        ok: dict[str, Any] = {"description": "Success"}
        if r.response is not None:
            ok["content"] = {r.content_type: {"schema": _schema_for(r.response, refs,
                                                                     "serialization")}}
        elif r.content_type != "application/json":
            ok["content"] = {r.content_type: {"schema": {"type": "string"}}}
        op["responses"][str(r.status)] = ok
        for status, text in ERROR_STATUSES.items():
            op["responses"][status] = {
                "description": text,
                "content": {"application/json": {"schema": refs[(Error, "serialization")]}},
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
