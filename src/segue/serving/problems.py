"""RFC 9457 problem details: every error the API returns, in one shape, naming the bad field.

    {"type": "urn:segue:problem:invalid-request", "title": "Invalid request", "status": 422,
     "detail": "...", "instance": "/v1/next-songs",
     "errors": [{"field": "songs[2]", "message": "control characters are not allowed"}]}

Served as ``application/problem+json``. Any input gives a 4xx; a 5xx means a bug or a missing
model (503), never bad input.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def problem_response(
    status: int,
    slug: str,
    detail: str,
    instance: str | None = None,
    errors: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, slug, detail, instance, errors),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


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


def install_problem_handlers(app: FastAPI) -> None:
    """Render validation errors, HTTP errors, ``ProblemError`` and bugs as problem details."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> JSONResponse:
        return problem_response(
            error.status, error.slug, error.detail, request.url.path, error.errors, error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            FieldProblem(field=field_name(item.get("loc", ())), message=_message(item))
            for item in error.errors()
        ]
        if any(item.get("type") == "json_invalid" for item in error.errors()):
            return problem_response(
                400,
                "invalid-json",
                "the request body is not valid JSON",
                request.url.path,
                problems,
            )
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return problem_response(422, "invalid-request", detail, request.url.path, problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        slug = "-".join(_title(error.status_code).lower().split())
        detail = str(error.detail) if error.detail else _title(error.status_code)
        return problem_response(
            error.status_code, slug, detail, request.url.path, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return problem_response(
            500, "internal-error", "the server failed to answer; this is a bug", request.url.path
        )


def _message(item: dict[str, Any]) -> str:
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
