"""Operational routes: liveness, readiness, Prometheus metrics and the web page."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from segue.serving.deps import StateDep
from segue.serving.problems import ProblemError, problem_responses
from segue.serving.schemas import HealthResponse, ReadyResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness")
async def healthz() -> HealthResponse:
    """200 while the process can answer at all, models loaded or not."""
    return HealthResponse()


@router.get(
    "/readyz", response_model=ReadyResponse, responses=problem_responses(503), summary="Readiness"
)
async def readyz(state: StateDep) -> ReadyResponse:
    """200 when at least one task has a model loaded; 503 problem details otherwise."""
    loaded = state.store.loaded()
    if not loaded:
        reasons = "; ".join(f"{task}: {state.store.problem(task)}" for task in state.store.tasks)
        raise ProblemError(503, "not-ready", f"no model is loaded ({reasons})")
    return ReadyResponse(models={model.task: model.version.version for model in loaded})


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={
        200: {"content": {"text/plain": {}}, "description": "Text exposition format."},
        **problem_responses(404),
    },
)
async def metrics(state: StateDep) -> Response:
    """Request counts and latency by route and status; lists served, their length, unmatched
    inputs and the items post-processing removed; fallbacks; feedback events; the event log's
    queue depth and dropped events; reloads, models loaded and their versions; the latest
    monitoring checks. Summed over every worker process. 404 when ``monitoring.enabled`` is
    false."""
    if not state.settings.monitoring.enabled:
        raise ProblemError(404, "not-found", "metrics are off (monitoring.enabled = false)")
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")
