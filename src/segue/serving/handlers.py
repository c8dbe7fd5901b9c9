"""FastAPI's exception handlers: validation errors, HTTP errors, ``ProblemError`` and bugs, each
rendered as RFC 9457 problem details by ``problems.render_problem``."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from segue.serving.problems import (
    PROBLEM_MEDIA_TYPE,
    ProblemError,
    http_problem,
    invalid_request,
    render_problem,
    report_bug,
)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error ``app`` answers becomes a problem details response."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> Response:
        return problem_response(error, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        return problem_response(invalid_request(error.errors()), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        problem = http_problem(error.status_code, error.detail, error.headers)
        return problem_response(problem, request.url.path)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception) -> Response:
        return problem_response(report_bug(request.url.path), request.url.path)


def problem_response(error: ProblemError, instance: str | None) -> Response:
    return Response(
        render_problem(error, instance),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=error.headers,
    )
