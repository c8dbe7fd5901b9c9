"""The plain-ASGI layers around the app: request metrics and the request body limit (413), and
what the fast lane shares with them: the body reader, the replay of a body read, problem sending.

Plain ASGI (not ``BaseHTTPMiddleware``) keeps the per-request overhead to a function call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Match

from segue.monitoring.prometheus import UNMATCHED_ROUTE, ServingMetrics
from segue.serving.problems import PROBLEM_MEDIA_TYPE, ProblemError, render_problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class MetricsMiddleware:
    """Counts every HTTP request and times it, labelled by route template, method and status.

    The outermost layer, so each request is counted once, whichever path answers it. The route
    is the ``scope["route"]`` the answering path set (FastAPI's router, or the fast lane with
    its ``ListRoute``): both name their template ``path``.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.metrics.observe_request(
                self._route(scope), scope["method"], status, time.perf_counter() - started
            )

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return getattr(route, "path", UNMATCHED_ROUTE)
        # Rejected before routing (e.g. 413): find the template the path would have matched
        # among the app's own routes (given explicitly: FastAPI's route list nests routers).
        for candidate in self.routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                return getattr(candidate, "path", UNMATCHED_ROUTE)
        return UNMATCHED_ROUTE


class BodyLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with a 413 problem, by header or by counting chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_limited_body(scope, receive, send, self.max_bytes)
        if body is not None:
            await self.app(scope, replaying(body, receive), send)


async def read_limited_body(
    scope: Scope, receive: Receive, send: Send, max_bytes: int
) -> bytes | None:
    """The request body; or None once a 413 problem is sent because the body is over
    ``max_bytes``, by its declared length or by counting its chunks.

    The one reader of request bodies, for the body limit layer and the fast lane alike (which
    sits outside it, so its requests skip a layer). When the client goes away mid-body, it
    returns the part received: the app then answers a request nobody waits for.
    """
    declared = _content_length(scope)
    too_large = declared is not None and declared > max_bytes
    chunks: list[bytes] = []
    size = 0
    while not too_large:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        too_large = size > max_bytes
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if too_large:
        await send_problem(send, _body_too_large(max_bytes), scope.get("path"))
        return None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _body_too_large(max_bytes: int) -> ProblemError:
    return ProblemError(
        413,
        "body-too-large",
        f"the request body is larger than {max_bytes} bytes",
        headers={"connection": "close"},
    )


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app ``body`` (already read in full) first, then the rest."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def send_problem(send: Send, error: ProblemError, instance: str | None) -> None:
    """Answer ``error`` as problem details, rendered as FastAPI's handlers render it."""
    content = render_problem(error, instance)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(content)).encode()),
    ]
    for name, value in (error.headers or {}).items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
