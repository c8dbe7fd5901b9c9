"""FastAPI dependencies declared once as ``Annotated`` aliases; routes name them and stay thin.

The dependencies are ``async`` and flat, so FastAPI resolves them on the event loop without
worker threads or nested resolution. What they hand out (``ServingState``, ``RequestContext``)
lives in ``state``, free of the framework.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from segue.serving.problems import ProblemError
from segue.serving.schemas import Task
from segue.serving.state import RequestContext, ServingState, request_context


async def get_state(request: Request) -> ServingState:
    return request.app.state.segue


StateDep = Annotated[ServingState, Depends(get_state)]


async def _task_context(
    request: Request,
    task: Annotated[Task, Query(description="Which task's model and catalogue.")] = "next-song",
) -> RequestContext:
    return request_context(request.app.state.segue, task)


TaskContext = Annotated[RequestContext, Depends(_task_context)]


async def _k_query(
    request: Request,
    k: Annotated[int | None, Query(ge=1, description="List length, 1..serving.max_k.")] = None,
) -> int:
    return request.app.state.segue.list_length(k)


KQuery = Annotated[int, Depends(_k_query)]


async def _require_admin_key(
    request: Request,
    api_key: Annotated[
        str | None, Header(alias="X-API-Key", description="serving.admin_api_key")
    ] = None,
) -> None:
    """Admin routes need the configured key; with no key configured they are closed, even in dev."""
    expected = request.app.state.segue.settings.serving.admin_api_key
    challenge = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}
    if not expected:
        raise ProblemError(
            401,
            "unauthorized",
            "admin routes are disabled: set serving.admin_api_key (SEGUE_SERVING__ADMIN_API_KEY)",
            headers=challenge,
        )
    if api_key is None or not hmac.compare_digest(api_key.encode(), expected.encode()):
        raise ProblemError(
            401, "unauthorized", "missing or wrong X-API-Key header", headers=challenge
        )


AdminKey = Annotated[None, Depends(_require_admin_key)]
