"""Every served list becomes one event: a real `segue serve`, lists on both serving paths
(fallbacks included), feedback, then SIGTERM, and the event log holds exactly what was served."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from segue.data.song_parser import parse_songs
from segue.monitoring.events import read_event_log
from segue.serving.app import create_app

from .support import SONGS, PackageLoader, SegueProcess, settings_with

pytestmark = pytest.mark.slow

POLL_SECONDS = 30.0
PALETTE = parse_songs(SONGS)[0][SONGS.index("IU - Palette")].key
BUTTER = parse_songs(SONGS)[0][SONGS.index("BTS - Butter")].key

# (method, path, body, route template, the fallback expected). The fast lane answers the first
# five; FastAPI answers the similar items and the user list with a query it does not read.
LIST_REQUESTS = [
    ("POST", "/v1/next-songs", {"songs": ["Coldplay - Yellow"], "k": 3}, "/v1/next-songs", None),
    (
        "POST",
        "/v1/next-songs",
        {"songs": ["Nobody - Nothing", "IU - Palette"], "exclude": ["BTS - Butter"], "k": 4},
        "/v1/next-songs",
        None,
    ),
    ("POST", "/v1/next-songs", {"songs": ["Nobody - Nothing"]}, "/v1/next-songs", "no known songs"),
    (
        "GET",
        "/v1/users/1/recommendations?k=4",
        None,
        "/v1/users/{user_id}/recommendations",
        None,
    ),
    (
        "POST",
        "/v1/users/recommendations",
        {"history": ["100", 102, "999"], "k": 2},
        "/v1/users/recommendations",
        None,
    ),
    (
        "GET",
        "/v1/users/stranger/recommendations?k=3&debug=1",
        None,
        "/v1/users/{user_id}/recommendations",
        "unknown user",
    ),
    (
        "GET",
        "/v1/items/coldplay%7Cyellow/similar?task=next-song&k=2",
        None,
        "/v1/items/{key:path}/similar",
        None,
    ),
]


def test_every_served_list_is_logged_once_and_flushed_on_sigterm(registered, tmp_path) -> None:
    served = {}
    with SegueProcess(registered) as server, httpx.Client(base_url=server.url) as http:
        for method, path, body, route, fallback in LIST_REQUESTS:
            answer = http.request(method, path, json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["fallback"] == fallback
            served[answer.json()["recommendation_id"]] = (route, answer.json())
        invalid = http.post("/v1/next-songs", json={"songs": ["IU - Palette"], "k": 1000})
        assert invalid.status_code == 422  # refused before scoring: no event
        first_id, (_, first) = next(iter(served.items()))
        feedback = {
            "events": [
                {"recommendation_id": first_id, "item": item["key"], "type": "impression",
                 "position": position}
                for position, item in enumerate(first["items"], start=1)
            ] + [{"recommendation_id": first_id, "item": first["items"][0]["key"],
                  "type": "click", "position": 1, "timestamp": "2026-03-01T10:00:00Z"}]
        }  # fmt: skip
        accepted = http.post("/v1/feedback", json=feedback)
        assert (accepted.status_code, accepted.json()) == (202, {"accepted": 4})
        # uvicorn shuts down gracefully, then ends by the signal it received.
        assert server.stop() in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in server.output()

    log = read_event_log(tmp_path / ".segue" / "events")
    assert log.skipped == []
    lists = log.lists.set_index("recommendation_id")
    assert sorted(lists.index) == sorted(served)
    for recommendation_id, (route, answer) in served.items():
        row = lists.loc[recommendation_id]
        assert row["route"] == route
        assert row["task"] == answer["task"]
        assert row["model_version"] == answer["model"]["version"]
        assert row["algorithm"] == answer["model"]["algorithm"]
        assert row["n_items"] == len(answer["items"])
        assert row["unmatched"] == len(answer["unmatched"])
        assert row["latency_ms"] > 0
        items = log.items[log.items["recommendation_id"] == recommendation_id]
        assert list(items["item"]) == [item["key"] for item in answer["items"]]
        assert list(items["position"]) == list(range(1, len(answer["items"]) + 1))

    by_route = lists.groupby("route").size().to_dict()
    assert by_route == {
        "/v1/next-songs": 3,
        "/v1/users/{user_id}/recommendations": 2,
        "/v1/users/recommendations": 1,
        "/v1/items/{key:path}/similar": 1,
    }
    assert sorted(lists["fallback"].dropna()) == ["no known songs", "unknown user"]
    users = lists[lists["route"] == "/v1/users/{user_id}/recommendations"]
    assert sorted(zip(users["user_id"], users["known_user"])) == [("1", True), ("stranger", False)]
    history = lists[lists["route"] == "/v1/users/recommendations"].iloc[0]
    assert (history["input_size"], history["unmatched"], history["known_user"]) == (3, 1, False)
    assert sorted(history["input_items"]) == ["100", "102"]
    playlist = lists[lists["input_size"] == 2].iloc[0]  # two songs sent, one unknown
    assert list(playlist["input_items"]) == [PALETTE]
    assert playlist["unmatched"] == 1
    assert playlist["removed_excluded"] + playlist["removed_seen"] >= 1
    assert list(playlist["excluded_items"]) == [BUTTER]  # the request's matched `exclude`
    others = lists.drop(index=playlist.name)
    assert [list(excluded) for excluded in others["excluded_items"]] == [[]] * len(others)

    assert sorted(log.feedback["type"]) == ["click", "impression", "impression", "impression"]
    assert set(log.feedback["recommendation_id"]) == {first_id}


def test_an_unwritable_log_directory_drops_events_and_keeps_serving(serve, packages) -> None:
    Path("blocked").write_text("a file where the event log directory should be")
    settings = settings_with(
        "monitoring.event_log_dir='blocked/events'", "monitoring.event_flush_events=1"
    )
    url = serve(create_app(settings, PackageLoader(packages)))
    for _ in range(3):
        answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["IU - Palette"], "k": 2})
        assert answer.status_code == 200
    feedback = {"events": [{"recommendation_id": "x", "item": "iu|palette", "type": "click"}]}
    assert httpx.post(f"{url}/v1/feedback", json=feedback).status_code == 202
    assert httpx.get(f"{url}/readyz").status_code == 200
    deadline = time.monotonic() + POLL_SECONDS
    while dropped(httpx.get(f"{url}/metrics").text) < 4:
        assert time.monotonic() < deadline, "the dropped events were never counted"
        time.sleep(0.05)
    assert dropped(httpx.get(f"{url}/metrics").text) == 4
    assert httpx.get(f"{url}/readyz").status_code == 200


def dropped(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("segue_events_dropped_total "):
            return float(line.split()[1])
    raise AssertionError("segue_events_dropped_total is not exported")
