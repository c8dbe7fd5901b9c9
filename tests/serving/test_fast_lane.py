"""The fast lane answers well-formed list requests past the framework: its answers must be the
ones the documented FastAPI routes give, in the documented schema; it answers every route it
declares, hands on only invalid requests, and never computes a request twice."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from segue.serving import fast_lane
from segue.serving.app import create_app
from segue.serving.fast_lane import FastLane
from segue.serving.route_table import HISTORY_LIST, LIST_ROUTES, NEXT_SONGS, ListRoute
from segue.serving.schemas import RecommendationResponse

from .support import PackageLoader, next_song_package, settings_with, user_items_package

pytestmark = pytest.mark.slow


@pytest.fixture
def url(serve, packages) -> str:
    return serve(create_app(settings_with(), PackageLoader(packages, version="3")))


def comparable(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = RecommendationResponse.model_validate_json(response.content).model_dump()
    answer.pop("recommendation_id")
    return answer


def test_every_list_route_answers_in_the_documented_schema(url: str) -> None:
    answers = [
        httpx.post(f"{url}/v1/next-songs", json={"songs": ["IU - Palette"], "k": 3}),
        httpx.post(f"{url}/v1/users/recommendations", json={"history": ["1", 2], "k": 3}),
        httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 3}),
        httpx.get(f"{url}/v1/users/no-such-user/recommendations"),
    ]
    lists = [comparable(response) for response in answers]
    assert [len(answer["items"]) for answer in lists] == [3, 3, 3, 10]
    assert lists[3]["fallback"] == "unknown user"


def test_a_request_handed_on_to_the_framework_gets_the_same_list(url: str) -> None:
    # An unknown query parameter is not the fast lane's to judge: FastAPI answers that one.
    fast = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 4})
    framework = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 4, "trace": "1"})
    assert comparable(fast) == comparable(framework)


def test_json_that_is_valid_but_oddly_written_is_answered(url: str) -> None:
    raw = b'  {"k" : 2 ,\n "history" : [ 1 , "2" ] }  '
    response = httpx.post(
        f"{url}/v1/users/recommendations", content=raw, headers={"content-type": "application/json"}
    )
    assert len(comparable(response)["items"]) == 2


def test_every_fast_lane_route_is_a_documented_route_with_the_same_method(packages) -> None:
    paths = create_app(settings_with(), PackageLoader(packages)).openapi()["paths"]
    assert set(fast_lane.ROUTES) == set(LIST_ROUTES)
    for route in fast_lane.ROUTES:
        assert route.method.lower() in paths.get(route.path, {}), route


def example_path(route: ListRoute) -> str:
    return route.path.replace("{user_id}", "1")


def test_the_fast_lane_answers_every_route_it_declares_and_hands_on_invalid_ones(packages) -> None:
    app = create_app(settings_with(), PackageLoader(packages))
    state = app.state.segue
    handed_on: list[str] = []

    async def framework(scope, receive, send) -> None:
        handed_on.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    bodies = {NEXT_SONGS: {"songs": ["iu|palette"], "k": 2}, HISTORY_LIST: {"history": ["101"]}}
    transport = httpx.ASGITransport(app=FastLane(framework, state))

    async def requests() -> tuple[list[int], int]:
        async with httpx.AsyncClient(transport=transport, base_url="http://lane") as client:
            answered = [
                (await client.request(r.method, example_path(r), json=bodies.get(r))).status_code
                for r in fast_lane.ROUTES
            ]
            invalid = await client.post(NEXT_SONGS.path, json={"songs": []})
            return answered, invalid.status_code

    state.store.refresh()
    for queue in state.scoring.values():
        queue.start()
    try:
        answered, invalid = asyncio.run(requests())
    finally:
        for queue in state.scoring.values():
            queue.stop()
    assert answered == [200] * len(fast_lane.ROUTES)
    assert invalid == 418 and handed_on == [NEXT_SONGS.path]


def test_a_scoring_bug_is_computed_once_and_answers_a_500_problem(serve, packages) -> None:
    calls: list[int] = []
    broken = {"next-song": next_song_package("most-popular"), "user-items": user_items_package()}
    for package in broken.values():
        loading_score = package.scorer._score

        def failing_score(histories, loading_score=loading_score):
            if not armed:  # loading a model scores too; the bug shows only when serving
                return loading_score(histories)
            calls.append(len(histories))
            raise RuntimeError("a scoring bug")

        package.scorer._score = failing_score
    armed = False
    url = serve(create_app(settings_with(), PackageLoader(broken)))
    armed = True

    response = httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"], "k": 3})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:segue:problem:internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the server failed to answer; this is a bug",
        "instance": "/v1/next-songs",
        "errors": [],
    }
    assert calls == [1]
    metrics = httpx.get(f"{url}/metrics").text
    counted = 'segue_http_requests_total{method="POST",route="/v1/next-songs",status="500"} 1.0'
    assert counted in metrics

    # The fast lane renders the problem exactly as FastAPI's handler does.
    fast = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 3})
    framework = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 3, "trace": "1"})
    assert fast.status_code == framework.status_code == 500
    assert fast.headers["content-type"] == framework.headers["content-type"]
    assert fast.content == framework.content
    assert calls == [1, 1, 1]


def test_a_bug_before_scoring_answers_a_500_problem(serve, packages, monkeypatch) -> None:
    # The fast lane sits in front of the framework's error layer: it must answer its own bugs.
    def broken(state, body):
        raise RuntimeError("a bug in accepting a request")

    entry = fast_lane._BODY_ROUTES[NEXT_SONGS.path]
    monkeypatch.setitem(fast_lane._BODY_ROUTES, NEXT_SONGS.path, entry._replace(accept=broken))
    url = serve(create_app(settings_with(), PackageLoader(packages)))

    response = httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"], "k": 3})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:segue:problem:internal-error"
    counted = 'segue_http_requests_total{method="POST",route="/v1/next-songs",status="500"} 1.0'
    assert counted in httpx.get(f"{url}/metrics").text
