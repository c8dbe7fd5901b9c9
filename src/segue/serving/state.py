"""What one app instance shares between requests, and what one request works with.

``ServingState`` holds the settings, the model store, the metrics, the event log's writer, the
rules and one scoring queue per task. A request works with one ``RequestContext``: the state, the task's model taken
once for the whole request, and the rules as of now, so a hot reload cannot change them mid-way.
Lists are scored by the task's ``ScoringQueue``; other slow work (search) goes to a worker
thread. No framework here: the FastAPI dependencies (``deps``) and the fast lane both build on it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import anyio

from segue.monitoring.events import EventWriter
from segue.monitoring.prometheus import ServingMetrics
from segue.ranking.ban_list import BanListFile
from segue.ranking.postprocess import PostProcessConfig
from segue.serving.batching import ScoringQueue
from segue.serving.model_store import ModelStore
from segue.serving.problems import ProblemError, invalid_field
from segue.serving.recommender import ListRequest, ListRules, Recommendation, ServingModel
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
    events: EventWriter | None = None  # None: the event log is off
    recommendation_ids: RecommendationIds = field(default_factory=RecommendationIds)
    scoring: dict[str, ScoringQueue] = field(default_factory=dict)
    # The last monitoring summary (monotonic time computed, summary) and its computation's lock.
    summary: tuple[float, dict[str, Any]] | None = None
    summary_lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False)
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

    def check_list_size(self, values: list, field: str, limit: int | None = None) -> None:
        limit = self.settings.serving.max_songs if limit is None else limit
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
        self, prepare: Callable[[ServingModel, ListRules], ListRequest], *, keyed: bool = False
    ) -> Recommendation:
        """The list for the request ``prepare(model, rules)`` builds.

        ``keyed``: ``prepare`` only looks keys up (microseconds, bounded by the request's size
        limit), so it runs here, and a list the model answers quickly
        (``ServingModel.quick_list``) is answered here too: the hop to the scoring thread and
        back would cost more than the list. Everything else is prepared and scored in the
        task's scoring queue.
        """
        queue = self.state.scoring[self.model.task]
        if not keyed:
            return await queue.recommend(self.model, partial(prepare, self.model, self.rules))
        request = prepare(self.model, self.rules)
        listed = self.model.quick_list(request)
        if listed is not None:
            return listed
        return await queue.recommend(self.model, lambda: request)


def request_context(state: ServingState, task: str) -> RequestContext:
    """The state, ``task``'s model now (or a 503 problem) and the rules now, for one request."""
    return RequestContext(state, state.model(task), state.rules())
