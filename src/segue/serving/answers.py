"""What each list route answers, once for both paths a request can take: the FastAPI routes
(documented, and the ones that render every error) and the fast lane (well-formed requests).

Each function checks the profile's limits (a ``ProblemError`` names the field), queues the
request for scoring and returns the ``RecommendationResponse`` JSON as bytes.
"""

from __future__ import annotations

import json
from typing import Any

from segue.serving.deps import RequestContext, ServingState, request_context
from segue.serving.recommender import Recommendation
from segue.serving.schemas import HistoryRequest, NextSongsRequest

JSON_MEDIA_TYPE = "application/json"


async def answer_next_songs(state: ServingState, body: NextSongsRequest) -> bytes:
    context = request_context(state, "next-song")
    state.check_list_size(body.songs, "songs")
    state.check_list_size(body.exclude, "exclude")
    k = state.list_length(body.k)
    result = await context.recommend(
        lambda model, rules: model.next_songs_request(body.songs, k, rules, body.exclude)
    )
    return list_json(context, result)


async def answer_user(state: ServingState, user_id: str, k: int | None) -> bytes:
    context = request_context(state, "user-items")
    length = state.list_length(k)
    result = await context.recommend(
        lambda model, rules: model.user_request(user_id, length, rules)
    )
    return list_json(context, result)


async def answer_history(state: ServingState, body: HistoryRequest) -> bytes:
    context = request_context(state, "user-items")
    state.check_list_size(body.history, "history")
    k = state.list_length(body.k)
    keys = body.keys()
    result = await context.recommend(lambda model, rules: model.history_request(keys, k, rules))
    return list_json(context, result)


def list_json(context: RequestContext, result: Recommendation) -> bytes:
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
