"""The JSON API's route registry: request parsing, response shaping and the OpenAPI document.

Every ``/api`` route is declared through :class:`ApiRouter`, so the OpenAPI document is
generated from the same models that validate requests and shape responses.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, get_args, get_origin

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from yilian.server.core import keys
from yilian.server.core.auth import authenticate
from yilian.server.core.db import Database
from yilian.server.core.errors import BadRequest, NotFound, UnsupportedMediaType, ValidationFailed
from yilian.server.core.models import User
from yilian.server.core.settings import Settings

MAX_ID = 2**31 - 1


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
        """An integer id from the path; anything else is a 404."""
        raw = self.request.match_info[name]
        if not raw.isdigit() or int(raw) > MAX_ID or int(raw) < 1:
            raise NotFound(f"no such {name.removesuffix('_id') or 'resource'}: {raw!r}")
        return int(raw)


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


def _validation_details(exc: ValidationError) -> dict[str, Any]:
    return {
        "errors": [
            {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
    }


async def parse_json_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Validate a JSON body strictly against ``model``: wrong types and unknown fields fail."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            "send the body as application/json", details={"content_type": request.content_type}
        )
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("a JSON body is required", code="invalid_json")
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    _refuse_unstorable_text(parsed, ["body"])
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


def _refuse_unstorable_text(value: Any, loc: list[str]) -> None:
    """NUL characters and lone surrogates cannot be stored in PostgreSQL text: refuse them up
    front with a 422 instead of letting the database fail the request later."""
    if isinstance(value, str):
        if _unstorable(value):
            raise ValidationFailed(
                "text may not contain NUL characters or unpaired surrogates",
                details={"errors": [{"loc": loc, "msg": "unstorable character", "type": "string_nul"}]},
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable_text(key, loc)
            _refuse_unstorable_text(item, [*loc, str(key)])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unstorable_text(item, [*loc, str(index)])


def parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Validate query parameters (strings coerced) against ``model``; unknown ones ignored."""
    names = {f.alias or n for n, f in model.model_fields.items()}
    data = {k: v for k, v in request.query.items() if k in names}
    _refuse_unstorable_text(data, ["query"])
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
    ) -> Callable[[Handler], Handler]:
        """Declare a handler for ``method path``."""

        def decorate(fn: Handler) -> Handler:
            self.routes.append(
                Route(method, path, fn, summary, tag, body, query, response, status, auth,
                      content_type)
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
        if route.body is not None:
            api_request.body = await parse_json_body(request, route.body)
        result = await route.handler(api_request)
        if isinstance(result, web.StreamResponse):
            return result
        if route.status == 204:
            return web.Response(status=204)
        return web.json_response(_dump(result), status=route.status)

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
                "required": True,
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
