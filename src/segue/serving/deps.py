"""Dependencies declared once as ``Annotated`` aliases; routes name them and stay thin.

All are ``async`` so FastAPI runs them on the event loop instead of a worker thread: they only
read state. The scoring itself is sent to a worker thread by the routes.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request

from segue.monitoring.prometheus import ServingMetrics
from segue.ranking.ban_list import BanListFile
from segue.ranking.postprocess import PostProcessConfig
from segue.serving.model_store import ModelStore
from segue.serving.problems import ProblemError, invalid_field
from segue.serving.recommender import ListRules, ServingModel
from segue.settings import Settings


@dataclass
class ServingState:
    """Everything one app instance shares between requests."""

    settings: Settings
    store: ModelStore
    metrics: ServingMetrics
    ban_list: BanListFile
    postprocess: PostProcessConfig


async def get_state(request: Request) -> ServingState:
    return request.app.state.segue


StateDep = Annotated[ServingState, Depends(get_state)]


def require_model(state: ServingState, task: str) -> ServingModel:
    """The model serving ``task`` now, or a 503 problem saying why there is none."""
    model = state.store.get(task)
    if model is None:
        raise ProblemError(
            503, "model-unavailable", f"no {task} model is serving: {state.store.problem(task)}"
        )
    return model


def _model_for(task: str):
    async def current_model(state: StateDep) -> ServingModel:
        return require_model(state, task)

    return current_model


NextSongModel = Annotated[ServingModel, Depends(_model_for("next-song"))]
UserItemsModel = Annotated[ServingModel, Depends(_model_for("user-items"))]


async def current_rules(state: StateDep) -> ListRules:
    """The profile's post-processing rules with the ban list as of this request."""
    return ListRules(state.postprocess, state.ban_list.current())


RulesDep = Annotated[ListRules, Depends(current_rules)]


def resolve_k(k: int | None, state: ServingState) -> int:
    """The list length: the request's, within 1..max_k, or the profile default."""
    serving = state.settings.serving
    if k is None:
        return min(serving.default_k, serving.max_k)
    if not 1 <= k <= serving.max_k:
        raise invalid_field("k", f"must be between 1 and {serving.max_k}")
    return k


def check_list_size(values: list, field: str, state: ServingState) -> None:
    limit = state.settings.serving.max_songs
    if len(values) > limit:
        raise invalid_field(field, f"at most {limit} entries per request, got {len(values)}")


async def k_query(
    state: StateDep,
    k: Annotated[int | None, Query(ge=1, description="List length, 1..serving.max_k.")] = None,
) -> int:
    return resolve_k(k, state)


KQuery = Annotated[int, Depends(k_query)]


async def require_admin_key(
    state: StateDep,
    api_key: Annotated[
        str | None, Header(alias="X-API-Key", description="serving.admin_api_key")
    ] = None,
) -> None:
    """Admin routes need the configured key; with no key configured they are closed, even in dev."""
    expected = state.settings.serving.admin_api_key
    if not expected:
        raise ProblemError(
            401,
            "unauthorized",
            "admin routes are disabled: set serving.admin_api_key (SEGUE_SERVING__ADMIN_API_KEY)",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
        )
    if api_key is None or not hmac.compare_digest(api_key.encode(), expected.encode()):
        raise ProblemError(
            401,
            "unauthorized",
            "missing or wrong X-API-Key header",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
        )


AdminKey = Annotated[None, Depends(require_admin_key)]
