"""Bad input always gets a 4xx RFC 9457 problem naming the field, never a 5xx."""

from __future__ import annotations

import json
import random
from urllib.parse import quote

import httpx
import pytest

from segue.serving.app import create_app

from .support import PackageLoader, settings_with

pytestmark = pytest.mark.slow

FUZZ_REQUESTS = 300


@pytest.fixture
def url(serve, packages) -> str:
    settings = settings_with(
        "serving.max_k=20", "serving.max_songs=5", "serving.max_body_bytes=2048"
    )
    return serve(create_app(settings, PackageLoader(packages)))


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["status"] == status
    return body


def fields(body: dict) -> list[str]:
    return [error["field"] for error in body["errors"]]


@pytest.mark.parametrize("k", [0, -3, 21, 10**9])
def test_k_out_of_range_names_k(url: str, k: int) -> None:
    body = problem(httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"], "k": k}), 422)
    assert fields(body) == ["k"]
    body = problem(httpx.get(f"{url}/v1/users/1/recommendations", params={"k": k}), 422)
    assert fields(body) == ["k"]


def test_k_of_the_wrong_type_names_k(url: str) -> None:
    body = problem(httpx.post(f"{url}/v1/next-songs", json={"songs": ["a - b"], "k": "ten"}), 422)
    assert fields(body) == ["k"]


def test_empty_playlist_names_songs(url: str) -> None:
    body = problem(httpx.post(f"{url}/v1/next-songs", json={"songs": []}), 422)
    assert fields(body) == ["songs"]


def test_too_many_songs_names_songs_with_the_limit(url: str) -> None:
    body = problem(httpx.post(f"{url}/v1/next-songs", json={"songs": ["a - b"] * 6}), 422)
    assert fields(body) == ["songs"]
    assert "at most 5" in body["errors"][0]["message"]
    body = problem(httpx.post(f"{url}/v1/users/recommendations", json={"history": [1] * 6}), 422)
    assert fields(body) == ["history"]


def test_missing_songs_field_is_named(url: str) -> None:
    body = problem(httpx.post(f"{url}/v1/next-songs", json={"k": 3}), 422)
    assert fields(body) == ["songs"]


def test_unknown_fields_are_named(url: str) -> None:
    body = problem(httpx.post(f"{url}/v1/next-songs", json={"songs": ["a - b"], "kk": 3}), 422)
    assert fields(body) == ["kk"]


def test_body_over_the_limit_is_413(url: str) -> None:
    songs = ["x" * 250] * 5
    problem(
        httpx.post(f"{url}/v1/next-songs", json={"songs": songs, "k": 3, "pad": "y" * 2000}), 413
    )


def test_chunked_body_over_the_limit_is_413(url: str) -> None:
    def chunks():
        yield b'{"songs": ["'
        for _ in range(10):
            yield b"z" * 500
        yield b'"]}'

    response = httpx.post(
        f"{url}/v1/next-songs", content=chunks(), headers={"content-type": "application/json"}
    )
    problem(response, 413)


def test_invalid_json_is_400(url: str) -> None:
    response = httpx.post(
        f"{url}/v1/next-songs", content=b'{"songs": [', headers={"content-type": "application/json"}
    )
    assert problem(response, 400)["type"] == "urn:segue:problem:invalid-json"


def test_body_that_is_not_utf8_is_a_4xx(url: str) -> None:
    response = httpx.post(
        f"{url}/v1/next-songs",
        content=b'{"songs": ["\xff\xfe"]}',
        headers={"content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"


def test_lone_surrogate_names_the_song(url: str) -> None:
    raw = b'{"songs": ["iu|palette", "ok - fine", "bad \\ud800 song"]}'
    response = httpx.post(
        f"{url}/v1/next-songs", content=raw, headers={"content-type": "application/json"}
    )
    body = problem(response, 422)
    assert fields(body) == ["songs[2]"]
    message = body["errors"][0]["message"]
    assert "surrogate" in message or "unicode" in message


def test_control_characters_name_the_song(url: str) -> None:
    body = {"songs": ["iu|palette"], "exclude": ["fine", "bell\u0007"]}
    answer = problem(httpx.post(f"{url}/v1/next-songs", json=body), 422)
    assert fields(answer) == ["exclude[1]"]
    assert "U+0007" in answer["errors"][0]["message"]


def test_blank_and_overlong_songs_are_named(url: str) -> None:
    answer = problem(httpx.post(f"{url}/v1/next-songs", json={"songs": ["ok", "   "]}), 422)
    assert fields(answer) == ["songs[1]"]
    answer = problem(httpx.post(f"{url}/v1/next-songs", json={"songs": ["x" * 301]}), 422)
    assert fields(answer) == ["songs[0]"]


def test_wrong_body_shapes_are_422(url: str) -> None:
    for body in ([], "songs", 3, None, {"songs": "iu|palette"}, {"songs": [1, 2]}):
        answer = problem(httpx.post(f"{url}/v1/next-songs", json=body), 422)
        assert answer["errors"]


def test_search_query_is_validated(url: str) -> None:
    assert fields(problem(httpx.get(f"{url}/v1/songs/search"), 422)) == ["q"]
    assert fields(problem(httpx.get(f"{url}/v1/songs/search", params={"q": "a\x00"}), 422)) == ["q"]
    bad_limit = httpx.get(f"{url}/v1/songs/search", params={"q": "iu", "limit": 0})
    assert fields(problem(bad_limit, 422)) == ["limit"]
    bad_task = httpx.get(f"{url}/v1/songs/search", params={"q": "iu", "task": "movies"})
    assert fields(problem(bad_task, 422)) == ["task"]


def test_unknown_route_and_method_are_problems(url: str) -> None:
    problem(httpx.get(f"{url}/v1/nothing"), 404)
    problem(httpx.get(f"{url}/v1/next-songs"), 405)


def random_value(rng: random.Random, depth: int = 0):
    choices = ["int", "float", "str", "bool", "none"] + (["list", "dict"] if depth < 3 else [])
    kind = rng.choice(choices)
    if kind == "int":
        return rng.choice([0, -1, 1, 5, 10**12, -(10**12)])
    if kind == "float":
        return rng.choice([0.5, -1e300, 1e308, 3.0])
    if kind == "str":
        alphabet = "aZ 9-|가나\u0000\u001f\u202e\ufffd😀\\\"'"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
    if kind == "bool":
        return rng.choice([True, False])
    if kind == "none":
        return None
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 7))]
    keys = ["songs", "k", "exclude", "history", "x"]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_random_bodies_never_cause_a_5xx(url: str) -> None:
    rng = random.Random(20240601)
    routes = ["/v1/next-songs", "/v1/users/recommendations"]
    with httpx.Client(base_url=url, timeout=10) as client:
        for index in range(FUZZ_REQUESTS):
            route = routes[index % 2]
            if index % 5 == 0:
                content = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
            else:
                content = json.dumps(random_value(rng), ensure_ascii=rng.random() < 0.5).encode()
            response = client.post(
                route, content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code < 500, (route, content, response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"
        for _ in range(FUZZ_REQUESTS // 3):
            text = str(random_value(rng))
            segment = quote(text, safe="")
            for path, params in (
                (f"/v1/users/{segment}/recommendations", {"k": text}),
                ("/v1/songs/search", {"q": text, "limit": text}),
                (f"/v1/items/{segment}/similar", {"k": rng.randint(-5, 50)}),
            ):
                response = client.get(path, params=params)
                assert response.status_code < 500, (path, params, response.text)
