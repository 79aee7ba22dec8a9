"""Helpers shared by the DICOMweb handlers: DICOM JSON answers, URLs, auditing."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from yilian.server.core import keys
from yilian.server.core.models import User
from yilian.server.core.security import public_base

PREFIX = "/dicomweb"
DICOM_JSON = "application/dicom+json"


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    """A DICOM JSON answer."""
    return web.Response(body=json.dumps(doc, separators=(",", ":")).encode(), status=status,
                        content_type=DICOM_JSON, headers=headers)


def base_url(request: web.Request) -> str:
    """The absolute /dicomweb URL clients should use (the configured public URL, or this
    request's address; a Host header that is not a plain host[:port] is never reflected)."""
    return public_base(request, request.app[keys.SETTINGS].public_url) + PREFIX


def audit(request: web.Request, user: User, action: str, study_uid: str | None,
          detail: dict[str, Any] | None = None) -> None:
    """Record one access to image data (journaled now, in the table within a moment)."""
    request.app[keys.AUDIT].record(user, action, "study" if study_uid else "dicom_query",
                                   study_uid, ip=request.remote, detail=detail)
