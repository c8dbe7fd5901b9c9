"""The FastAPI app factory: one app per settings object, each with its own models and metrics.

At start-up the champion of every configured task is loaded (a task without one answers 503
until a champion appears); then a poller checks the champion alias every
``serving.reload_interval_seconds`` and swaps in a new version in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from segue import __version__
from segue.monitoring.events import EventWriter
from segue.monitoring.prometheus import ServingMetrics
from segue.ranking.ban_list import BanListFile
from segue.ranking.postprocess import PostProcessConfig
from segue.serving import ops, routes
from segue.serving.fast_lane import FastLane
from segue.serving.handlers import install_problem_handlers
from segue.serving.matching import MatchBudget
from segue.serving.middleware import (
    ASGIApp,
    BodyLimitMiddleware,
    MetricsMiddleware,
    Receive,
    Scope,
    Send,
)
from segue.serving.model_store import ChampionLoader, ChampionProbe, ModelStore
from segue.serving.problems import PROBLEM_MEDIA_TYPE
from segue.serving.recommender import FALLBACK_REASONS
from segue.serving.route_table import ROUTES_BY_TASK
from segue.serving.state import ServingState
from segue.settings import Settings

logger = logging.getLogger(__name__)

# `segue serve --workers N` hands each worker process its settings through this variable.
SETTINGS_ENVIRONMENT_VARIABLE = "SEGUE_SERVE_SETTINGS_JSON"
# How long a thread may hold the GIL while another waits (CPython's default is 5 ms). The event
# loop gives up the GIL at every socket call and would wait up to that long to get it back from
# a scoring thread each time: at concurrency 8 that put p99 over 100 ms. 0.5 ms keeps it near 15.
GIL_SWITCH_INTERVAL_SECONDS = 0.0005


class SegueAPI(FastAPI):
    """FastAPI with Segue's own plain-ASGI layers (``front``) in front of the framework's.

    The framework wraps every request in layers of its own (error pages, telemetry, a body
    limit) that cost more per request than a served list's HTTP does. The fast lane's requests
    never need them: it answers its own errors. Everything it hands on meets all of them.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.front is not None:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request as FastAPI alone answers it (past ``front``)."""
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings, loader: ChampionLoader | None = None, *, probe: ChampionProbe | None = None
) -> FastAPI:
    """The API and web page for ``settings``.

    ``loader`` returns a task's champion as ``(version info, ModelPackage)``; by default it is
    the MLflow registry's (``segue.tracking.package_cache.load_champion``) with an alias probe, so
    polling costs one registry call. An injected loader without a probe is called every poll
    and its package used only when the version differs.
    """
    if loader is None:
        loader, probe = registry_champion_source(settings)
    monitoring = settings.monitoring
    log_dir = monitoring.event_log_dir if monitoring.enabled else None
    metrics = ServingMetrics(alerts_file=None if log_dir is None else log_dir / "check.json")
    metrics.start(
        {task: [route.path for route in ROUTES_BY_TASK[task]] for task in settings.serving.tasks},
        FALLBACK_REASONS,
    )
    events = None
    if log_dir is not None:
        events = EventWriter(
            log_dir,
            queue_size=monitoring.event_queue_size,
            flush_events=monitoring.event_flush_events,
            flush_seconds=monitoring.event_flush_seconds,
            metrics=metrics,
            hash_user_ids=monitoring.hash_user_ids,
        )
        metrics.queue_depth_source = lambda: events.queue_depth
    store = ModelStore(
        settings.serving.tasks,
        loader,
        probe=probe,
        fuzzy_threshold=settings.serving.fuzzy_threshold,
        match_budget=MatchBudget.from_settings(settings.serving),
        metrics=metrics,
        precomputed_dir=settings.serving.precomputed_dir,
    )
    state = ServingState(
        settings=settings,
        store=store,
        metrics=metrics,
        ban_list=BanListFile(settings.serving.ban_list_file),
        postprocess=PostProcessConfig.from_settings(settings.serving),
        events=events,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(store.refresh)
        # Everything loaded so far (libraries, the models) lives as long as the server: moved out
        # of the collector's reach, a full collection no longer walks it and stalls requests.
        gc.collect()
        gc.freeze()
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
        if events is not None:
            events.start()
        for queue in state.scoring.values():
            queue.start()
        poller = None
        if settings.serving.reload_interval_seconds > 0:
            poller = asyncio.create_task(
                _poll_champions(store, settings.serving.reload_interval_seconds)
            )
        try:
            yield
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            for queue in state.scoring.values():
                await anyio.to_thread.run_sync(queue.stop)
            if events is not None:  # after the queues: their last lists are logged too
                await anyio.to_thread.run_sync(events.close)
            sys.setswitchinterval(switch_interval)
            gc.unfreeze()

    app = SegueAPI(
        title="Segue",
        version=__version__,
        summary="Next-song and user-item recommendations.",
        description="Errors are RFC 9457 problem details (`application/problem+json`).",
        lifespan=lifespan,
    )
    app.state.segue = state
    install_problem_handlers(app)
    app.include_router(ops.router)
    app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=ops.STATIC_DIR), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serving.max_body_bytes)
    # In front of the framework, from the outside in: the request metrics count every request
    # once; the fast lane answers well-formed list requests and hands the rest to the framework.
    front: ASGIApp = FastLane(app.framework, state=state)
    if settings.monitoring.enabled:
        front = MetricsMiddleware(
            front, metrics=metrics, routes=[*ops.router.routes, *routes.router.routes]
        )
    app.front = front
    app.openapi = lambda: _openapi_with_problem_types(app)  # type: ignore[method-assign]
    return app


def create_app_from_environment() -> FastAPI:
    """The app of one worker process started by ``segue serve --workers N``."""
    return create_app(Settings.model_validate_json(os.environ[SETTINGS_ENVIRONMENT_VARIABLE]))


async def _poll_champions(store: ModelStore, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(store.refresh)
        except Exception:  # the poller must outlive any one bad poll
            logger.exception("champion poll failed")


def registry_champion_source(settings: Settings) -> tuple[ChampionLoader, ChampionProbe]:
    """Loader and alias probe reading ``models:/<name>@champion`` from the MLflow registry."""

    @functools.cache
    def registry() -> Any:  # one client for the app's lifetime, opened on first use
        from segue.tracking.registry import open_registry

        return open_registry(settings)

    def load(task: str) -> tuple[Any, Any]:
        from segue.tracking.package_cache import load_champion

        return load_champion(registry(), task)

    def probe(task: str) -> str | None:
        return registry().champion_version(task)

    return load, probe


def _openapi_with_problem_types(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with error responses declared as application/problem+json."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[:1] in {"4", "5"} and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    app.openapi_schema = schema
    return schema
