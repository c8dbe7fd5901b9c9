"""What each list route answers, once for both paths a request can take: the FastAPI routes
(documented, and the ones that render every error) and the fast lane (well-formed requests).

Answering a list is two steps. ``accept_*`` checks the request against the profile's limits
and takes the task's model: a ``ProblemError`` here names the invalid field (422) or says that
no model is serving (503), and nothing was computed yet. ``serve_list`` then scores the accepted
request (in the task's scoring queue, or on the event loop when that is cheaper:
``RequestContext.recommend``) and returns the ``RecommendationResponse`` JSON as bytes;
an error there is a bug. Every served list passes through ``serve_list``: it is the one place
where what was served is counted in the metrics and handed to the event log (a ``ServedList``
of references the response already holds; the log's writer thread turns it into rows).

Feedback (``accept_feedback``) goes to the same event log, and ``monitoring_summary`` reads the
log's recent window back for the page's Monitoring tab.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import anyio
import numpy as np
import orjson

from segue.monitoring.events import FeedbackEvent, ServedList, read_event_log
from segue.monitoring.report import read_check, summarise
from segue.serving.problems import ProblemError
from segue.serving.recommender import (
    FALLBACK_UNKNOWN_USER,
    ListRequest,
    ListRules,
    Recommendation,
    ServingModel,
)
from segue.serving.route_table import HISTORY_LIST, NEXT_SONGS, SIMILAR_ITEMS, USER_LIST
from segue.serving.schemas import FeedbackRequest, HistoryRequest, NextSongsRequest
from segue.serving.state import RequestContext, ServingState, request_context

JSON_MEDIA_TYPE = "application/json"


class AcceptedList(NamedTuple):
    """A list request that passed every check: the context it is served in, how to build its
    ``ListRequest`` from the context's model and rules (in the scoring worker), and what the
    event log records of the request."""

    context: RequestContext
    build: Callable[[ServingModel, ListRules], ListRequest]
    route: str  # the route template
    k: int
    input_size: int | None = None  # songs or keys sent; None: the length of the history scored
    user_id: str | None = None
    known_user: bool | None = None  # None: not a user route; else decided from the fallback
    keyed: bool = False  # ``build`` looks item keys up, matching no free text (``recommend``)


def accept_next_songs(state: ServingState, body: NextSongsRequest) -> AcceptedList:
    context = request_context(state, "next-song")
    state.check_list_size(body.songs, "songs")
    state.check_list_size(body.exclude, "exclude")
    k = state.list_length(body.k)
    return AcceptedList(
        context,
        lambda model, rules: model.next_songs_request(body.songs, k, rules, body.exclude),
        NEXT_SONGS.path,
        k,
        len(body.songs),
    )


def accept_user(state: ServingState, user_id: str, k: int | None) -> AcceptedList:
    context = request_context(state, "user-items")
    length = state.list_length(k)
    return AcceptedList(
        context,
        lambda model, rules: model.user_request(user_id, length, rules),
        USER_LIST.path,
        length,
        user_id=user_id,
        known_user=True,
        keyed=True,
    )


def accept_history(state: ServingState, body: HistoryRequest) -> AcceptedList:
    context = request_context(state, "user-items")
    state.check_list_size(body.history, "history")
    k = state.list_length(body.k)
    keys = body.keys()
    return AcceptedList(
        context,
        lambda model, rules: model.history_request(keys, k, rules),
        HISTORY_LIST.path,
        k,
        len(keys),
        known_user=False,
        keyed=True,
    )


def accept_similar(context: RequestContext, item: int, k: int) -> AcceptedList:
    return AcceptedList(
        context,
        lambda model, rules: model.similar_request(item, k, rules),
        SIMILAR_ITEMS.path,
        k,
        1,
        keyed=True,
    )


async def serve_list(accepted: AcceptedList) -> bytes:
    """Score an accepted request and return its ``RecommendationResponse`` JSON."""
    started = time.perf_counter()
    result = await accepted.context.recommend(accepted.build, keyed=accepted.keyed)
    return _list_json(accepted, result, started)


def _list_json(accepted: AcceptedList, result: Recommendation, started: float) -> bytes:
    """The ``RecommendationResponse`` of one served list, built directly: every field is already
    checked, and validating it again would cost more per request than scoring. The list is
    counted in the metrics and handed to the event log here, once for both serving paths."""
    context = accepted.context
    state = context.state
    model = context.model
    removed = result.removed
    recommendation_id = state.recommendation_ids.next()
    state.metrics.record_list(
        model.task,
        accepted.route,
        len(result.items),
        len(result.unmatched),
        (removed.seen, removed.excluded, removed.ban_list, removed.artist_cap),
    )
    if result.fallback is not None:
        state.metrics.record_fallback(model.task, result.fallback)
    body: dict[str, Any] = {
        "recommendation_id": recommendation_id,
        "task": model.task,
        "items": [
            {
                "key": model.keys[entry.item],
                "artist": model.artists[entry.item],
                "title": model.titles[entry.item],
                "score": entry.score,
            }
            for entry in result.items
        ],
        "model": {
            "name": model.version.name,
            "version": model.version.version,
            "algorithm": model.algorithm,
        },
        "unmatched": result.unmatched,
        "fallback": result.fallback,
    }
    # orjson: a tenth of the standard encoder's time for this body. Every score is finite (lists
    # hold no item the model cannot score), so its NaN-as-null never applies.
    content = orjson.dumps(body)
    if state.events is not None:
        known_user = accepted.known_user
        if known_user:  # a user route: known unless the model fell back for a stranger
            known_user = result.fallback != FALLBACK_UNKNOWN_USER
        state.events.submit_list(
            ServedList(
                recommendation_id,
                time.time(),
                model.task,
                accepted.route,
                model.version.name,
                model.version.version,
                model.algorithm,
                accepted.k,
                accepted.user_id,
                len(result.history) if accepted.input_size is None else accepted.input_size,
                len(result.unmatched),
                result.fallback,
                removed,
                (time.perf_counter() - started) * 1000.0,
                result.history,
                result.items,
                model.keys,
                model.artists,
                known_user,
                result.excluded,
            )
        )
    return content


def accept_feedback(state: ServingState, body: FeedbackRequest) -> int:
    """Count a batch of feedback events and hand it to the event log; the number accepted."""
    state.check_list_size(body.events, "events", state.settings.serving.max_feedback_events)
    events = [
        FeedbackEvent(
            event.recommendation_id,
            event.item,
            event.type,
            event.position,
            None if event.timestamp is None else event.timestamp.timestamp(),
        )
        for event in body.events
    ]
    state.metrics.record_feedback(Counter(event.type for event in events))
    if state.events is not None:
        state.events.submit_feedback(events)
    return len(events)


async def monitoring_summary(state: ServingState) -> dict[str, Any]:
    """The summary of the event log's recent window (``monitoring.summary_window_hours``) for
    the page's Monitoring tab: computed in a worker thread, at most once per
    ``monitoring.summary_cache_seconds``."""
    monitoring = state.settings.monitoring
    directory = monitoring.event_log_dir
    if not monitoring.enabled or directory is None:
        raise ProblemError(
            404, "not-found", "the event log is off (monitoring.enabled, monitoring.event_log_dir)"
        )
    async with state.summary_lock:  # one computation at a time; the others reuse it
        cached = state.summary
        if cached is not None and time.monotonic() - cached[0] < monitoring.summary_cache_seconds:
            return cached[1]
        sizes = {model.task: len(model.keys) for model in state.store.loaded()}
        summary = await anyio.to_thread.run_sync(
            partial(
                summarise_recent,
                directory,
                timedelta(hours=monitoring.summary_window_hours),
                k=state.settings.serving.default_k,
                attribution_window=timedelta(seconds=monitoring.attribution_window_seconds),
                catalogue_sizes=sizes,
            )
        )
        state.summary = (time.monotonic(), summary)
        return summary


def summarise_recent(
    directory: Path,
    window: timedelta,
    *,
    k: int,
    attribution_window: timedelta,
    catalogue_sizes: dict[str, int],
) -> dict[str, Any]:
    """``segue.monitoring.report.summarise`` over the last ``window`` of the event log, with the
    latest ``segue monitor check`` result, as strict JSON values."""
    since = datetime.now(UTC) - window
    log = read_event_log(directory, since=since)
    summary = summarise(
        log,
        since=since,
        k=k,
        attribution_window=attribution_window,
        check=read_check(directory),
        catalogue_sizes=catalogue_sizes,
    )
    return _plain(summary)


def _plain(value: Any) -> Any:
    """``value`` as strict JSON values: NumPy scalars as numbers, times as ISO 8601, NaN and
    infinities as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
