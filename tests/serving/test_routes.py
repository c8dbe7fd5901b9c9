"""The /v1 routes against a real uvicorn server: what a client sends and what it gets back."""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

from segue.monitoring.events import read_event_log
from segue.serving.app import create_app

from .support import LiveServer, PackageLoader, settings_with

pytestmark = pytest.mark.slow


@pytest.fixture
def url(serve, packages) -> str:
    return serve(create_app(settings_with(), PackageLoader(packages, version="7")))


def test_next_songs_reads_free_text_keys_and_reports_unmatched(url: str) -> None:
    body = {"songs": ["00:00 아이유 - 밤편지 [MV]", "iu|palette", "zzzz qqqq"], "k": 4}
    response = httpx.post(f"{url}/v1/next-songs", json=body)
    assert response.status_code == 200
    answer = response.json()
    keys = [item["key"] for item in answer["items"]]
    assert len(keys) == 4
    assert not {"iu|밤편지", "iu|palette"} & set(keys)  # the playlist itself is never recommended
    assert answer["unmatched"] == ["zzzz qqqq"]
    assert answer["fallback"] is None
    assert answer["model"] == {
        "name": "dev.segue-next-song",
        "version": "7",
        "algorithm": "item-knn",
    }
    assert all({"key", "artist", "title", "score"} <= set(item) for item in answer["items"])
    assert len(answer["recommendation_id"]) == 32
    again = httpx.post(f"{url}/v1/next-songs", json=body).json()
    assert again["recommendation_id"] != answer["recommendation_id"]
    assert again["items"] == answer["items"]  # same input, same list


def test_next_songs_fuzzy_matches_misspelt_songs(url: str) -> None:
    response = httpx.post(f"{url}/v1/next-songs", json={"songs": ["Coldplay - Fix Yuo"], "k": 3})
    answer = response.json()
    assert answer["unmatched"] == []
    assert "coldplay|fixyou" not in [item["key"] for item in answer["items"]]


def test_next_songs_follow_the_playlist_mood(url: str) -> None:
    answer = httpx.post(
        f"{url}/v1/next-songs", json={"songs": ["Coldplay - Yellow"], "k": 4}
    ).json()
    artists = {item["artist"] for item in answer["items"]}
    assert artists <= {"Coldplay", "Adele"}


def test_exclude_removes_songs_from_the_list(url: str) -> None:
    plain = httpx.post(f"{url}/v1/next-songs", json={"songs": ["Coldplay - Yellow"], "k": 3}).json()
    first = plain["items"][0]["key"]
    body = {"songs": ["Coldplay - Yellow"], "k": 3, "exclude": [first]}
    answer = httpx.post(f"{url}/v1/next-songs", json=body).json()
    assert first not in [item["key"] for item in answer["items"]]


def test_unknown_songs_get_the_marked_popularity_fallback(url: str) -> None:
    answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["qqqq zzzz"], "k": 3}).json()
    assert answer["fallback"] == "no known songs"
    assert len(answer["items"]) == 3
    assert answer["unmatched"] == ["qqqq zzzz"]


def test_known_user_gets_unseen_items_of_their_taste(url: str, packages) -> None:
    answer = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 5}).json()
    history = {str(100 + i) for i in packages["user-items"].user_histories["1"]}
    keys = [item["key"] for item in answer["items"]]
    assert len(keys) == 5 and not history & set(keys)
    assert all(int(key) % 2 == 0 for key in keys)  # user 1 is in the even-movie group
    assert answer["fallback"] is None
    assert answer["items"][0]["title"].startswith("Movie ")


def test_unknown_user_gets_the_marked_fallback(url: str) -> None:
    answer = httpx.get(f"{url}/v1/users/nobody/recommendations").json()
    assert answer["fallback"] == "unknown user"
    assert len(answer["items"]) == 10  # serving.default_k


def test_new_user_history_by_keys(url: str) -> None:
    body = {"history": ["101", 103, "999999"], "k": 4}
    answer = httpx.post(f"{url}/v1/users/recommendations", json=body).json()
    keys = [item["key"] for item in answer["items"]]
    assert answer["unmatched"] == ["999999"]
    assert all(int(key) % 2 == 1 for key in keys) and not {"101", "103"} & set(keys)


def test_history_of_unknown_items_falls_back(url: str) -> None:
    answer = httpx.post(f"{url}/v1/users/recommendations", json={"history": ["nope"]}).json()
    assert answer["fallback"] == "no known items"


def test_similar_items_exclude_the_item_and_404_for_unknown_keys(url: str) -> None:
    answer = httpx.get(f"{url}/v1/items/coldplay|yellow/similar", params={"k": 3}).json()
    keys = [item["key"] for item in answer["items"]]
    assert len(keys) == 3 and "coldplay|yellow" not in keys
    movies = httpx.get(f"{url}/v1/items/101/similar", params={"task": "user-items"}).json()
    assert movies["task"] == "user-items" and "101" not in [i["key"] for i in movies["items"]]
    missing = httpx.get(f"{url}/v1/items/no|such/similar")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_search_finds_prefixes_and_misspellings(url: str) -> None:
    found = httpx.get(f"{url}/v1/songs/search", params={"q": "cold", "limit": 5}).json()["items"]
    assert {item["artist"] for item in found} == {"Coldplay"} and len(found) == 3
    fuzzy = httpx.get(f"{url}/v1/songs/search", params={"q": "Someone Like Yu"}).json()["items"]
    assert fuzzy[0]["key"] == "adele|someonelikeyou"
    assert httpx.get(f"{url}/v1/songs/search", params={"q": "iu", "limit": 1}).json()["items"]


def test_models_health_and_readiness(url: str) -> None:
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["models"] == {"next-song": "7", "user-items": "7"}
    models = httpx.get(f"{url}/v1/models").json()
    assert {m["task"]: m["version"] for m in models["models"]} == {
        "next-song": "7",
        "user-items": "7",
    }
    assert models["missing"] == []


def test_a_task_without_champion_answers_503_and_the_other_still_serves(serve, packages) -> None:
    only_songs = PackageLoader({"next-song": packages["next-song"]})
    url = serve(create_app(settings_with(), only_songs))
    response = httpx.get(f"{url}/v1/users/1/recommendations")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "no champion registered for user-items" in response.json()["detail"]
    assert httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"]}).status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 200
    missing = httpx.get(f"{url}/v1/models").json()["missing"]
    assert [m["task"] for m in missing] == ["user-items"]


def test_no_model_at_all_is_alive_but_not_ready(serve) -> None:
    url = serve(create_app(settings_with(), PackageLoader({})))
    assert httpx.get(f"{url}/healthz").status_code == 200
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 503
    assert ready.json()["type"] == "urn:segue:problem:not-ready"


def test_one_configured_task_loads_only_that_task(serve, packages) -> None:
    loader = PackageLoader(packages)
    url = serve(create_app(settings_with("serving.tasks=['user-items']"), loader))
    assert httpx.get(f"{url}/readyz").json()["models"] == {"user-items": "1"}
    response = httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"]})
    assert response.status_code == 503
    assert "not served by this instance" in response.json()["detail"]


def test_openapi_documents_every_error_as_problem_details(url: str) -> None:
    schema = httpx.get(f"{url}/openapi.json").json()
    operation = schema["paths"]["/v1/next-songs"]["post"]
    for status in ("400", "413", "422", "503"):
        content = operation["responses"][status]["content"]
        assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    for path, methods in schema["paths"].items():
        for method, spec in methods.items():
            for status, response in spec["responses"].items():
                if status.startswith("4") or status.startswith("5"):
                    assert "application/json" not in response.get("content", {}), (path, method)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert httpx.get(f"{url}/docs").status_code == 200


def click(**changes) -> dict:
    return {"recommendation_id": "r1", "item": "iu|palette", "type": "click", **changes}


def test_feedback_is_accepted_counted_and_written(serve, packages) -> None:
    server = LiveServer(create_app(settings_with(), PackageLoader(packages)))
    url = server.start()
    events = [
        click(type="impression", position=1),
        click(position=1, timestamp="2026-03-01T10:00:00+09:00"),
        click(type="play", item=100, timestamp=1772330400),
        click(recommendation_id="never-served", type="skip"),
    ]
    answer = httpx.post(f"{url}/v1/feedback", json={"events": events})
    assert (answer.status_code, answer.json()) == (202, {"accepted": 4})
    metrics = httpx.get(f"{url}/metrics").text
    assert 'segue_feedback_events_total{type="click"} 1.0' in metrics
    assert 'segue_feedback_events_total{type="accept"} 0.0' in metrics
    server.stop()  # the lifespan's end writes what is queued

    feedback = read_event_log(".segue/events").feedback
    assert list(feedback["type"]) == ["impression", "click", "play", "skip"]
    assert list(feedback["item"]) == ["iu|palette", "iu|palette", "100", "iu|palette"]
    assert list(feedback["timestamp"].iloc[1:3]) == [
        pd.Timestamp("2026-03-01T01:00:00", tz="UTC"),
        pd.Timestamp(1772330400, unit="s", tz="UTC"),
    ]
    assert pd.isna(feedback["position"].iloc[3])


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([click(type="like")], "events[0].type"),
        ([click(), click(position=0)], "events[1].position"),
        ([click(recommendation_id="")], "events[0].recommendation_id"),
        ([click(item="a\x00b")], "events[0].item"),
        ([click(timestamp="yesterday")], "events[0].timestamp"),
        ([click(timestamp="1970-01-01T00:00:00Z")], "events[0].timestamp"),
        ([click(extra=1)], "events[0].extra"),
        ([], "events"),
        ([click()] * 6, "events"),
    ],
    ids=[
        "type",
        "position",
        "empty id",
        "control character",
        "not a time",
        "time before 2000",
        "unknown field",
        "no events",
        "too many",
    ],
)
def test_invalid_feedback_is_a_problem_naming_the_field(
    serve, packages, events: list, field: str
) -> None:
    url = serve(create_app(settings_with("serving.max_feedback_events=5"), PackageLoader(packages)))
    answer = httpx.post(f"{url}/v1/feedback", json={"events": events})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in answer.json()["errors"]]
    assert 'segue_feedback_events_total{type="click"} 0.0' in httpx.get(f"{url}/metrics").text


def test_monitoring_summary_covers_the_lists_just_served(serve, packages) -> None:
    settings = settings_with(
        "monitoring.event_flush_events=1", "monitoring.summary_cache_seconds=0"
    )
    url = serve(create_app(settings, PackageLoader(packages)))
    served = [
        httpx.post(f"{url}/v1/next-songs", json={"songs": songs, "k": 3}).json()
        for songs in (["IU - Palette"], ["Coldplay - Yellow"], ["Nobody - Nothing"])
    ]
    first = served[0]
    impressions = [
        {"recommendation_id": first["recommendation_id"], "item": item["key"],
         "type": "impression", "position": position}
        for position, item in enumerate(first["items"], start=1)
    ]  # fmt: skip
    clicked = {**impressions[0], "type": "click"}
    httpx.post(f"{url}/v1/feedback", json={"events": [*impressions, clicked]})
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(f"{url}/v1/monitoring/summary")
        assert answer.status_code == 200
        summary = answer.json()
        figures = summary["tasks"].get("next-song", {})
        if figures.get("lists_served") == 3 and figures.get("clicks") == 1:
            break
        assert time.monotonic() < deadline, f"the summary never showed the lists: {summary}"
        time.sleep(0.05)
    assert figures["fallback_rate"] == pytest.approx(1 / 3)
    assert figures["impressions"] == 3
    assert figures["click_through_rate"] == pytest.approx(1 / 3)
    assert summary["alerts"] == []


def test_monitoring_summary_is_404_when_the_event_log_is_off(serve, packages) -> None:
    url = serve(create_app(settings_with("monitoring.event_log_dir=''"), PackageLoader(packages)))
    answer = httpx.get(f"{url}/v1/monitoring/summary")
    assert answer.status_code == 404
    assert "event log is off" in answer.json()["detail"]
    assert httpx.post(f"{url}/v1/feedback", json={"events": [click()]}).status_code == 202
