"""The fast lane: well-formed list requests answered in plain ASGI, past the framework.

Per request, routing, dependency resolution and the middleware stack of FastAPI cost more CPU
than scoring a list does. The list routes of ``route_table`` are the traffic, so a request to one
of them that parses and passes its checks is answered here. The fast lane hands on to the
FastAPI app only what the app must render: an invalid request (the problem names the field) or
a missing model (503), both found before anything is scored. A request it accepted is never
handed on: when scoring fails, the fast lane answers the 500 problem itself, so no request is
computed twice. Both paths answer through ``answers``.

It sits inside the request metrics layer, which counts every request once whichever path
answers it, and in front of FastAPI's own layers (``app.SegueAPI``): it answers its own bugs
with the 500 problem. It reads bodies with the body limit layer's reader (``middleware``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel

from segue.serving.answers import (
    JSON_MEDIA_TYPE,
    AcceptedList,
    accept_history,
    accept_next_songs,
    accept_user,
    serve_list,
)
from segue.serving.middleware import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    read_limited_body,
    replaying,
    send_problem,
)
from segue.serving.problems import ProblemError, report_bug
from segue.serving.route_table import HISTORY_LIST, NEXT_SONGS, USER_LIST, ListRoute
from segue.serving.schemas import MAX_USER_ID_LENGTH, HistoryRequest, NextSongsRequest
from segue.serving.state import ServingState

JSON_HEADERS = [(b"content-type", JSON_MEDIA_TYPE.encode())]


class _BodyRoute(NamedTuple):
    route: ListRoute
    schema: type[BaseModel]
    accept: Callable[[ServingState, Any], AcceptedList]


_BODY_ROUTES = {
    entry.route.path: entry
    for entry in (
        _BodyRoute(NEXT_SONGS, NextSongsRequest, accept_next_songs),
        _BodyRoute(HISTORY_LIST, HistoryRequest, accept_history),
    )
}
_USER_LIST_START, _, _USER_LIST_END = USER_LIST.path.partition("{user_id}")
# Every route the fast lane answers; each must be a documented FastAPI route (tested).
ROUTES = (*(entry.route for entry in _BODY_ROUTES.values()), USER_LIST)


class FastLane:
    """ASGI middleware answering well-formed list requests; everything else passes through."""

    def __init__(self, app: ASGIApp, state: ServingState) -> None:
        self.app = app
        self.state = state
        self.max_bytes = state.settings.serving.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        body_route = _BODY_ROUTES.get(path)
        if body_route is not None and method == body_route.route.method:
            body = await read_limited_body(scope, receive, send, self.max_bytes)
            if body is None:  # over the limit: answered 413
                return
            receive = replaying(body, receive)
            route: ListRoute = body_route.route
            accept = functools.partial(self._accept_body, body_route, body)
        elif (
            method == USER_LIST.method
            and path.startswith(_USER_LIST_START)
            and path.endswith(_USER_LIST_END)
        ):
            route, accept = USER_LIST, functools.partial(self._accept_user_list, scope)
        else:
            await self.app(scope, receive, send)
            return
        try:
            accepted = accept()
        except Exception:  # a bug: answered as the framework's error layer answers one
            await send_problem(send, report_bug(path), path)
            return
        if accepted is None:
            await self.app(scope, receive, send)
        else:
            await self._serve(scope, send, route, accepted)

    def _accept_body(self, route: _BodyRoute, body: bytes) -> AcceptedList | None:
        """The accepted request, or None when the FastAPI app must answer it."""
        try:
            request = _parse(body, route.schema)
        except (ValueError, RecursionError):  # not JSON (or absurdly nested), or not the schema
            return None
        try:
            return route.accept(self.state, request)
        except ProblemError:  # over a limit of the profile, or no model serves the task
            return None

    def _accept_user_list(self, scope: Scope) -> AcceptedList | None:
        """The accepted request, or None when the FastAPI app must answer it."""
        inputs = _user_list_inputs(scope)
        if inputs is None:
            return None
        try:
            return accept_user(self.state, *inputs)
        except ProblemError:  # k over the profile's limit, or no model serves the task
            return None

    @staticmethod
    async def _serve(scope: Scope, send: Send, route: ListRoute, accepted: AcceptedList) -> None:
        scope["route"] = route  # the request metrics' label, as FastAPI's router sets it
        try:
            content = await serve_list(accepted)
        except Exception:
            path = scope["path"]
            await send_problem(send, report_bug(path), path)
            return
        headers = [*JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _parse(body: bytes, schema: type[BaseModel]) -> Any:
    # orjson, strict and a quarter of the standard parser's time. What it refuses and the standard
    # parser reads (a lone surrogate such as "\ud800", NaN) is handed on: FastAPI parses it as
    # the standard parser does, and its problem names the field.
    return schema.model_validate(orjson.loads(body))


def _user_list_inputs(scope: Scope) -> tuple[str, int | None] | None:
    """The user id and k of ``GET /v1/users/{user_id}/recommendations?k=``, when plainly valid;
    None for anything FastAPI must judge (an odd id, another query parameter, a k not digits)."""
    user_id = scope["path"][len(_USER_LIST_START) : -len(_USER_LIST_END)]
    if not user_id or "/" in user_id or len(user_id) > MAX_USER_ID_LENGTH:
        return None
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    if not query:
        return user_id, None
    if len(query) != 1 or query[0][0] != "k" or not query[0][1].isascii():
        return None
    if not query[0][1].isdigit():  # FastAPI's message names k for anything else
        return None
    return user_id, int(query[0][1])
