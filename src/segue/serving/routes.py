"""The /v1 API: parse the request, queue it for scoring off the event loop, format.

Lists are scored by the task's ``ScoringQueue`` (worker threads, a batch at a time), so one slow
request never stalls the others; the model object is taken once per request, so a hot reload
cannot change it mid-way. The list routes are declared from ``route_table``, which the fast lane
reads too: well-formed list requests are answered by ``fast_lane`` before they get here, and
these routes document the API and answer the rest, through the same ``answers``. Feedback on
served lists goes to the event log; the monitoring summary reads it back for the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from segue.serving.answers import (
    JSON_MEDIA_TYPE,
    accept_feedback,
    accept_history,
    accept_next_songs,
    accept_similar,
    accept_user,
    monitoring_summary,
    serve_list,
)
from segue.serving.deps import (
    AdminKey,
    KQuery,
    StateDep,
    TaskContext,
)
from segue.serving.problems import ProblemError, problem_responses
from segue.serving.route_table import (
    API_PREFIX,
    HISTORY_LIST,
    NEXT_SONGS,
    SIMILAR_ITEMS,
    USER_LIST,
    ListRoute,
)
from segue.serving.schemas import (
    MAX_USER_ID_LENGTH,
    FeedbackAccepted,
    FeedbackRequest,
    HistoryRequest,
    Item,
    LoadedModel,
    MissingModel,
    ModelsResponse,
    NextSongsRequest,
    RecommendationResponse,
    ReloadOutcome,
    ReloadResponse,
    SearchResponse,
    Text,
)

router = APIRouter(prefix=API_PREFIX)


BODY_ERRORS = problem_responses(400, 413, 422, 503)
QUERY_ERRORS = problem_responses(422, 503)


def _json(content: bytes) -> Response:
    return Response(content, media_type=JSON_MEDIA_TYPE)


def _list_route(route: ListRoute, **documentation: Any) -> Callable[[Any], Any]:
    """Declare a list route at the method and path of its ``route_table`` record."""
    return router.api_route(
        route.router_path,
        methods=[route.method],
        response_model=RecommendationResponse,
        tags=["recommendations"],
        **documentation,
    )


@_list_route(NEXT_SONGS, responses=BODY_ERRORS, summary="Next songs for a playlist")
async def next_songs(body: NextSongsRequest, state: StateDep) -> Response:
    """Songs to play next after `songs`. Free text goes through the ingestion parser, then
    exact key lookup, then a fuzzy match; inputs that match nothing are listed in `unmatched`."""
    return _json(await serve_list(accept_next_songs(state, body)))


@_list_route(USER_LIST, responses=QUERY_ERRORS, summary="Recommendations for a known user")
async def user_recommendations(
    user_id: Annotated[
        str, Path(max_length=MAX_USER_ID_LENGTH, description="The user id as in the ratings.")
    ],
    state: StateDep,
    k: Annotated[int | None, Query(description="List length, 1..serving.max_k.")] = None,
) -> Response:
    """Unseen items for a user from the training data; unknown users get the popularity
    fallback, marked `fallback: "unknown user"`."""
    return _json(await serve_list(accept_user(state, user_id, k)))


@_list_route(
    HISTORY_LIST, responses=BODY_ERRORS, summary="Recommendations for a new user's history"
)
async def history_recommendations(body: HistoryRequest, state: StateDep) -> Response:
    """Unseen items for a user the model never saw, from the item keys in `history`."""
    return _json(await serve_list(accept_history(state, body)))


@_list_route(
    SIMILAR_ITEMS, responses=problem_responses(404, 422, 503), summary="Items to follow one item"
)
async def similar_items(
    key: Annotated[str, Path(description="The item key (may contain slashes).")],
    k: KQuery,
    context: TaskContext,
) -> Response:
    """The list the model gives for a history of this one item, the item excluded."""
    model = context.model
    item = model.matcher.lookup_key(key)
    if item is None:
        raise ProblemError(
            404, "unknown-item", f"no item with key {key!r} in the {model.task} catalogue"
        )
    return _json(await serve_list(accept_similar(context, item, k)))


@router.get(
    "/songs/search",
    response_model=SearchResponse,
    responses=QUERY_ERRORS,
    summary="Search the catalogue",
    tags=["catalogue"],
)
async def search_songs(
    q: Annotated[Text, Query(description="What the person typed: artist, title or both.")],
    context: TaskContext,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SearchResponse:
    """Prefix matches (most popular first), then fuzzy matches; for the search box of the page."""
    model = context.model
    found = await context.off_loop(model.matcher.search, q, limit)
    return SearchResponse(
        task=model.task,
        items=[
            Item(key=model.keys[i], artist=model.artists[i], title=model.titles[i]) for i in found
        ],
    )


@router.post(
    "/feedback",
    status_code=202,
    response_model=FeedbackAccepted,
    responses=problem_responses(400, 413, 422),
    summary="Report what people did with served lists",
    tags=["feedback"],
)
async def feedback(body: FeedbackRequest, state: StateDep) -> FeedbackAccepted:
    """A batch of feedback events (impressions, clicks, plays, skips, accepts) on served lists,
    written to the event log for `segue monitor report`; validated as a whole, 202 once taken."""
    return FeedbackAccepted(accepted=accept_feedback(state, body))


@router.get(
    "/monitoring/summary",
    responses=problem_responses(404),
    summary="Monitoring summary of the recent window",
    tags=["monitoring"],
)
async def summary(state: StateDep) -> Response:
    """Lists served, click-through, fallback rate, guardrails, drift and alerts over the last
    `monitoring.summary_window_hours` of the event log (cached a few seconds); the page's
    Monitoring tab shows it. 404 when the event log is off."""
    content = await monitoring_summary(state)
    return _json(json.dumps(content, ensure_ascii=False, allow_nan=False).encode())


@router.get("/models", response_model=ModelsResponse, summary="Models serving", tags=["operations"])
async def loaded_models(state: StateDep) -> ModelsResponse:
    """Each task's registered model and version now serving, and why a task has none."""
    loaded = state.store.loaded()
    serving = {model.task for model in loaded}
    return ModelsResponse(
        models=[LoadedModel(**model.describe()) for model in loaded],
        missing=[
            MissingModel(task=task, problem=state.store.problem(task))
            for task in state.store.tasks
            if task not in serving
        ],
    )


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses=problem_responses(401, 422),
    summary="Load the current champions now",
    tags=["operations"],
)
async def reload_models(
    _: AdminKey,
    state: StateDep,
    force: Annotated[bool, Query(description="Reload even when the version is unchanged.")] = False,
) -> ReloadResponse:
    """Check every task's champion now instead of at the next poll; needs the X-API-Key header."""
    results = await run_in_threadpool(lambda: state.store.refresh(force=force))
    return ReloadResponse(
        results=[
            ReloadOutcome(task=r.task, outcome=r.outcome, version=r.version, detail=r.detail)
            for r in results
        ]
    )
