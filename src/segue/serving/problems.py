"""RFC 9457 problem details: every error the API returns, in one shape, naming the bad field.

    {"type": "urn:segue:problem:invalid-request", "title": "Invalid request", "status": 422,
     "detail": "...", "instance": "/v1/next-songs",
     "errors": [{"field": "songs[2]", "message": "control characters are not allowed"}]}

Served as ``application/problem+json``. Any input gives a 4xx; a 5xx means a bug or a missing
model (503), never bad input. This module has no framework in it: the FastAPI handlers
(``handlers``) and the plain-ASGI layers (``middleware``, ``fast_lane``) render through
``render_problem``, so a problem reads the same whichever path answered it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:segue:problem:"
LOCATION_ROOTS = frozenset({"body", "query", "path", "header", "cookie"})


class FieldProblem(BaseModel):
    field: str = Field(description='Where the problem is, e.g. "songs[2]", "k" or "body".')
    message: str


class Problem(BaseModel):
    """The RFC 9457 body of every error response."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, for a person.")
    instance: str | None = Field(None, description="The request path.")
    errors: list[FieldProblem] = Field(
        default_factory=list, description="Each invalid field, when the request had any."
    )


class ProblemError(Exception):
    """Raised by routes and dependencies; rendered as a problem details response."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        errors: Sequence[FieldProblem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = list(errors)
        self.headers = headers


def invalid_field(field: str, message: str) -> ProblemError:
    """A 422 naming one field."""
    return ProblemError(
        422,
        "invalid-request",
        f"{field}: {message}",
        errors=[FieldProblem(field=field, message=message)],
    )


def problem_body(
    status: int, slug: str, detail: str, instance: str | None, errors: Sequence[FieldProblem] = ()
) -> dict[str, Any]:
    return Problem(
        type=TYPE_PREFIX + slug,
        title=_title(status),
        status=status,
        detail=detail,
        instance=instance,
        errors=list(errors),
    ).model_dump(mode="json")


def render_problem(error: ProblemError, instance: str | None) -> bytes:
    """The response body of ``error`` for the request at ``instance``."""
    body = problem_body(error.status, error.slug, error.detail, instance, error.errors)
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def report_bug(instance: str | None) -> ProblemError:
    """Log the exception being handled and return the 500 problem that answers it: the client
    learns that it is a bug, never the bug's details."""
    logger.exception("unhandled error on %s", instance)
    return ProblemError(500, "internal-error", "the server failed to answer; this is a bug")


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> ProblemError:
    """The problem of a request that failed validation, from pydantic's error list: 400 when the
    body is not JSON at all, else 422 naming every invalid field."""
    problems = [
        FieldProblem(field=field_name(item.get("loc", ())), message=_message(item))
        for item in errors
    ]
    if any(item.get("type") == "json_invalid" for item in errors):
        return ProblemError(
            400, "invalid-json", "the request body is not valid JSON", errors=problems
        )
    detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return ProblemError(422, "invalid-request", detail, errors=problems)


def http_problem(status: int, detail: Any, headers: Mapping[str, str] | None) -> ProblemError:
    """The problem of an HTTP error the framework raised (404 no route, 405 wrong method...)."""
    slug = "-".join(_title(status).lower().split())
    text = str(detail) if detail else _title(status)
    return ProblemError(status, slug, text, headers=dict(headers) if headers else None)


def field_name(location: Sequence[str | int]) -> str:
    """("body", "songs", 2) -> "songs[2]"; ("query", "k") -> "k"; ("body",) -> "body"."""
    parts = list(location)
    if len(parts) > 1 and parts[0] in LOCATION_ROOTS:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def _message(item: Mapping[str, Any]) -> str:
    message = str(item.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring the problem schema for each status."""
    descriptions = {
        400: "The body is not valid JSON.",
        401: "The X-API-Key header is missing or wrong.",
        404: "The item or resource does not exist.",
        413: "The body is larger than serving.max_body_bytes.",
        422: "A field is invalid; `errors` names each one.",
        503: "No model is loaded for this task.",
    }
    return {
        status: {"model": Problem, "description": descriptions.get(status, _title(status))}
        for status in statuses
    }
