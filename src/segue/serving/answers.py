"""What each list route answers, once for both paths a request can take: the FastAPI routes
(documented, and the ones that render every error) and the fast lane (well-formed requests).

Answering a list is two steps. ``accept_*`` checks the request against the profile's limits
and takes the task's model: a ``ProblemError`` here names the invalid field (422) or says that
no model is serving (503), and nothing was computed yet. ``serve_list`` then scores the accepted
request in the task's scoring queue and returns the ``RecommendationResponse`` JSON as bytes;
an error there is a bug. Every served list passes through ``serve_list``: it is the one place
to record what was served.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from segue.serving.recommender import ListRequest, ListRules, Recommendation, ServingModel
from segue.serving.schemas import HistoryRequest, NextSongsRequest
from segue.serving.state import RequestContext, ServingState, request_context

JSON_MEDIA_TYPE = "application/json"


class AcceptedList(NamedTuple):
    """A list request that passed every check: the context it is served in, and how to build
    its ``ListRequest`` from the context's model and rules (in the scoring worker)."""

    context: RequestContext
    build: Callable[[ServingModel, ListRules], ListRequest]


def accept_next_songs(state: ServingState, body: NextSongsRequest) -> AcceptedList:
    context = request_context(state, "next-song")
    state.check_list_size(body.songs, "songs")
    state.check_list_size(body.exclude, "exclude")
    k = state.list_length(body.k)
    return AcceptedList(
        context, lambda model, rules: model.next_songs_request(body.songs, k, rules, body.exclude)
    )


def accept_user(state: ServingState, user_id: str, k: int | None) -> AcceptedList:
    context = request_context(state, "user-items")
    length = state.list_length(k)
    return AcceptedList(context, lambda model, rules: model.user_request(user_id, length, rules))


def accept_history(state: ServingState, body: HistoryRequest) -> AcceptedList:
    context = request_context(state, "user-items")
    state.check_list_size(body.history, "history")
    k = state.list_length(body.k)
    keys = body.keys()
    return AcceptedList(context, lambda model, rules: model.history_request(keys, k, rules))


def accept_similar(context: RequestContext, item: int, k: int) -> AcceptedList:
    return AcceptedList(context, lambda model, rules: model.similar_request(item, k, rules))


async def serve_list(accepted: AcceptedList) -> bytes:
    """Score an accepted request and return its ``RecommendationResponse`` JSON."""
    context = accepted.context
    result = await context.recommend(accepted.build)
    return _list_json(context, result)


def _list_json(context: RequestContext, result: Recommendation) -> bytes:
    """The ``RecommendationResponse`` of one served list, built directly: every field is already
    checked, and validating it again would cost more per request than scoring."""
    model = context.model
    if result.fallback is not None:
        context.state.metrics.record_fallback(model.task, result.fallback)
    body: dict[str, Any] = {
        "recommendation_id": context.state.recommendation_ids.next(),
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
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
