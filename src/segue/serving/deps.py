"""Dependencies declared once as ``Annotated`` aliases; routes name them and stay thin.

A request works with one ``RequestContext``: the shared state, the task's model taken once for
the whole request, and the rules as of now. The dependencies are ``async`` and flat, so FastAPI
resolves them on the event loop without worker threads or nested resolution. Lists are scored
by the task's ``ScoringQueue``; other slow work (search) goes to a worker thread.
"""

from __future__ import annotations

import hmac
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Header, Query, Request

from segue.monitoring.prometheus import ServingMetrics
from segue.ranking.ban_list import BanListFile
from segue.ranking.postprocess import PostProcessConfig
from segue.serving.batching import ScoringQueue
from segue.serving.model_store import ModelStore
from segue.serving.problems import ProblemError, invalid_field
from segue.serving.recommender import ListRequest, ListRules, Recommendation, ServingModel
from segue.serving.schemas import Task
from segue.settings import Settings

T = TypeVar("T")


class RecommendationIds:
    """Ids of served lists: a random prefix per app and a counter; unique, and cheaper than
    uuid4 (no system call per request)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


@dataclass
class ServingState:
    """Everything one app instance shares between requests."""

    settings: Settings
    store: ModelStore
    metrics: ServingMetrics
    ban_list: BanListFile
    postprocess: PostProcessConfig
    recommendation_ids: RecommendationIds = field(default_factory=RecommendationIds)
    scoring: dict[str, ScoringQueue] = field(default_factory=dict)
    _limiters: dict[str, anyio.CapacityLimiter] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # One queue per task, so a slow model of one task cannot hold up the other's lists.
        serving = self.settings.serving
        for task in serving.tasks:
            self.scoring.setdefault(
                task, ScoringQueue(task, serving.scoring_threads, serving.max_batch)
            )

    async def off_loop(self, task: str, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in a worker thread, at most ``scoring_threads`` per task.

        Few threads on purpose: Python work holds the GIL, and each extra thread competing for
        it delays the event loop, so every other request.
        """
        limiter = self._limiters.get(task)
        if limiter is None:
            limiter = self._limiters[task] = anyio.CapacityLimiter(
                self.settings.serving.scoring_threads
            )
        return await anyio.to_thread.run_sync(partial(function, *args), limiter=limiter)

    def rules(self) -> ListRules:
        """The profile's post-processing rules with the ban list as of this moment."""
        return ListRules(self.postprocess, self.ban_list.current())

    def model(self, task: str) -> ServingModel:
        """The model serving ``task`` now, or a 503 problem saying why there is none."""
        model = self.store.get(task)
        if model is None:
            raise ProblemError(
                503, "model-unavailable", f"no {task} model is serving: {self.store.problem(task)}"
            )
        return model

    def list_length(self, k: int | None) -> int:
        """The list length: the request's, within 1..max_k, or the profile default."""
        serving = self.settings.serving
        if k is None:
            return min(serving.default_k, serving.max_k)
        if not 1 <= k <= serving.max_k:
            raise invalid_field("k", f"must be between 1 and {serving.max_k}")
        return k

    def check_list_size(self, values: list, field: str) -> None:
        limit = self.settings.serving.max_songs
        if len(values) > limit:
            raise invalid_field(field, f"at most {limit} entries per request, got {len(values)}")


@dataclass(frozen=True)
class RequestContext:
    """What one request works with, fixed at its start (a hot reload cannot change it)."""

    state: ServingState
    model: ServingModel
    rules: ListRules

    async def off_loop(self, function: Callable[..., T], *args: Any) -> T:
        return await self.state.off_loop(self.model.task, function, *args)

    async def recommend(
        self, prepare: Callable[[ServingModel, ListRules], ListRequest]
    ) -> Recommendation:
        """The list for the request ``prepare(model, rules)`` builds, from the scoring queue."""
        return await self.state.scoring[self.model.task].recommend(
            self.model, partial(prepare, self.model, self.rules)
        )


async def get_state(request: Request) -> ServingState:
    return request.app.state.segue


StateDep = Annotated[ServingState, Depends(get_state)]


def request_context(state: ServingState, task: str) -> RequestContext:
    """The state, ``task``'s model now (or a 503 problem) and the rules now, for one request."""
    return RequestContext(state, state.model(task), state.rules())


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
