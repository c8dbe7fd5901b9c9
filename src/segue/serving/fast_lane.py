"""The fast lane: well-formed list requests answered in plain ASGI, past the framework.

Per request, routing, dependency resolution and the middleware stack of FastAPI cost more CPU
than scoring a list does. The three list routes are the traffic, so a request to one of them
that parses, validates and gets its list is answered here; anything else (an invalid field, a
body over the limit, a missing model, a bug) goes on, untouched, to the FastAPI app, which
renders the problem details. Both paths answer through ``segue.serving.answers``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel

from segue.monitoring.prometheus import ServingMetrics
from segue.serving.answers import JSON_MEDIA_TYPE, answer_history, answer_next_songs, answer_user
from segue.serving.deps import ServingState
from segue.serving.middleware import ASGIApp, Receive, Scope, Send, replaying
from segue.serving.schemas import MAX_USER_ID_LENGTH, HistoryRequest, NextSongsRequest

USERS_PREFIX = "/v1/users/"
USER_LIST_SUFFIX = "/recommendations"
JSON_HEADERS = [(b"content-type", JSON_MEDIA_TYPE.encode())]


@dataclass(frozen=True)
class _BodyRoute:
    template: str
    schema: type[BaseModel]
    answer: Callable[[ServingState, Any], Awaitable[bytes]]


BODY_ROUTES = {
    "/v1/next-songs": _BodyRoute("/v1/next-songs", NextSongsRequest, answer_next_songs),
    "/v1/users/recommendations": _BodyRoute(
        "/v1/users/recommendations", HistoryRequest, answer_history
    ),
}
USER_LIST_TEMPLATE = "/v1/users/{user_id}/recommendations"


class _HandOn(Exception):
    """The request is not one the fast lane answers: the FastAPI app takes it."""


class FastLane:
    """ASGI middleware answering well-formed list requests; everything else passes through."""

    def __init__(
        self, app: ASGIApp, state: ServingState, metrics: ServingMetrics | None = None
    ) -> None:
        self.app = app
        self.state = state
        self.metrics = metrics
        self.max_bytes = state.settings.serving.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        if method == "POST" and path in BODY_ROUTES:
            route = BODY_ROUTES[path]
            body, complete = await self._read_body(receive)
            try:
                if not complete:
                    raise _HandOn
                content = await route.answer(self.state, _parse(body, route.schema))
            except Exception:
                await self.app(scope, replaying(body, receive, more_body=not complete), send)
                return
            await self._send(send, content, route.template, method, started)
            return
        if method == "GET" and path.startswith(USERS_PREFIX) and path.endswith(USER_LIST_SUFFIX):
            try:
                user_id, k = _user_list_inputs(scope)
                content = await answer_user(self.state, user_id, k)
            except Exception:
                await self.app(scope, receive, send)
                return
            await self._send(send, content, USER_LIST_TEMPLATE, method, started)
            return
        await self.app(scope, receive, send)

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        """The body, and whether it is all there (False: over the limit, or the client left)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                return b"".join(chunks), False
            if not message.get("more_body", False):
                return b"".join(chunks), True

    async def _send(
        self, send: Send, content: bytes, template: str, method: str, started: float
    ) -> None:
        headers = [*JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        if self.metrics is not None:
            self.metrics.observe_request(template, method, 200, time.perf_counter() - started)


def _parse(body: bytes, schema: type[BaseModel]) -> Any:
    # The standard library's parser, as FastAPI's: it reads "\ud800" as a lone surrogate the
    # schema then names, where a stricter parser would only say the JSON is invalid.
    return schema.model_validate(json.loads(body))


def _user_list_inputs(scope: Scope) -> tuple[str, int | None]:
    """The user id and k of ``GET /v1/users/{user_id}/recommendations?k=``, when plainly valid."""
    user_id = scope["path"][len(USERS_PREFIX) : -len(USER_LIST_SUFFIX)]
    if not user_id or "/" in user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise _HandOn
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if not query:
        return user_id, None
    if len(query) != 1 or query[0][0] != "k" or not query[0][1].isascii():
        raise _HandOn
    if not query[0][1].isdigit():  # FastAPI's message names k for anything else
        raise _HandOn
    return user_id, int(query[0][1])
