"""The request metrics layer and GET /metrics: Prometheus text a scraper and an alert rule can
rely on, each request counted once whichever path answered it."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from segue.monitoring.events import read_event_log
from segue.serving.app import create_app

from .support import PackageLoader, SegueProcess, settings_with

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"

pytestmark = pytest.mark.slow


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, metric: str, **labels: str) -> float:
    return samples(text).get((metric, frozenset(labels.items())), 0.0)


def test_requests_latency_fallbacks_and_model_version_are_exported(serve, packages) -> None:
    url = serve(
        create_app(settings_with("serving.max_body_bytes=1024"), PackageLoader(packages, "3"))
    )
    with httpx.Client(base_url=url) as client:
        for _ in range(3):
            client.post("/v1/next-songs", json={"songs": ["iu|palette"]})
        client.post("/v1/next-songs", json={"songs": []})
        client.post("/v1/next-songs", json={"songs": ["x" * 200] * 6})  # 413
        client.get("/v1/users/12345/recommendations")  # unknown user: fallback
        client.get("/v1/users/1/recommendations")
        client.get("/no/such/page")
        text = client.get("/metrics").text

    route = {"route": "/v1/next-songs", "method": "POST"}
    assert value(text, "segue_http_requests_total", **route, status="200") == 3
    assert value(text, "segue_http_requests_total", **route, status="422") == 1
    assert value(text, "segue_http_requests_total", **route, status="413") == 1
    user_route = {"route": "/v1/users/{user_id}/recommendations", "method": "GET", "status": "200"}
    assert value(text, "segue_http_requests_total", **user_route) == 2
    assert value(text, "segue_http_request_duration_seconds_count", **route, status="200") == 3
    assert (
        value(text, "segue_http_request_duration_seconds_bucket", **route, status="200", le="+Inf")
        == 3
    )
    unmatched = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert value(text, "segue_http_requests_total", **unmatched) == 1
    assert value(text, "segue_fallbacks_total", task="user-items", reason="unknown user") == 1
    info = {
        "task": "next-song",
        "name": "dev.segue-next-song",
        "version": "3",
        "algorithm": "item-knn",
    }
    assert value(text, "segue_serving_model_info", **info) == 1
    assert value(text, "segue_model_reloads_total", task="user-items") == 1
    assert "12345" not in text  # ids never become labels


def test_each_app_has_its_own_registry(serve, packages) -> None:
    first = serve(create_app(settings_with(), PackageLoader(packages)))
    second = serve(create_app(settings_with(), PackageLoader(packages)))
    httpx.get(f"{first}/healthz")
    httpx.get(f"{first}/healthz")
    labels = {"route": "/healthz", "method": "GET", "status": "200"}
    # Each server's start-up poll of /healthz counts once; the first got two more.
    assert value(httpx.get(f"{first}/metrics").text, "segue_http_requests_total", **labels) == 3
    assert value(httpx.get(f"{second}/metrics").text, "segue_http_requests_total", **labels) == 1


def test_metrics_can_be_switched_off(serve, packages) -> None:
    url = serve(create_app(settings_with("monitoring.enabled=false"), PackageLoader(packages)))
    assert httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"]}).status_code == 200
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


LIST_ROUTE = "/v1/next-songs"
WORKER_REQUESTS = 40
SCRAPES = 8
POLL_SECONDS = 60.0


def test_two_workers_count_every_request_once_on_every_scrape(registered, tmp_path) -> None:
    events = tmp_path / ".segue" / "events"
    events.mkdir(parents=True)
    (events / "check.json").write_text(
        json.dumps(
            {
                "checked_at": "2026-03-01T10:00:00+00:00",
                "status": "alert",
                "checks": [{"check": "banned_items_served", "kind": "guardrail", "alert": True}],
            }
        )
    )
    shared = tmp_path / "prometheus"  # an operator's multiprocess directory: emptied at start
    shared.mkdir()
    (shared / "counter_1.db").write_bytes(b"a stale file of an earlier start")
    server = SegueProcess(
        [*registered, "monitoring.event_flush_events=1"],
        workers=2,
        environment={"PROMETHEUS_MULTIPROC_DIR": str(shared)},
    )
    with server:
        assert not (shared / "counter_1.db").exists()
        for _ in range(WORKER_REQUESTS):  # a new connection each: the workers share them
            answer = httpx.post(f"{server.url}{LIST_ROUTE}", json={"songs": ["IU - Palette"]})
            assert answer.status_code == 200
        scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(SCRAPES)]
        for text in scrapes:
            assert_counted(text, WORKER_REQUESTS)
            loaded = samples(text)[
                ("segue_models_loaded", frozenset({"task": "next-song"}.items()))
            ]
            assert loaded == 1  # in every live worker
        exported = {name for text in scrapes for name, _ in samples(text)}
        for series in series_named_by_the_deploy_rules():
            assert series in exported, f"{series} is named in deploy/prometheus but not exported"

        # Every list is on disk; then one worker dies. Its requests stay counted, its live
        # gauges go, and its replacement serves.
        deadline = time.monotonic() + POLL_SECONDS
        while len(read_event_log(events).lists) < WORKER_REQUESTS:
            assert time.monotonic() < deadline, "the workers never wrote their events"
            time.sleep(0.05)
        workers = sorted({int(path.stem.rsplit("_", 1)[1]) for path in shared.glob("gauge_live*")})
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        while list(shared.glob(f"gauge_live*_{workers[0]}.db")):
            assert time.monotonic() < deadline + POLL_SECONDS, "the dead worker was never marked"
            time.sleep(0.1)
        while len({path.stem for path in shared.glob("gauge_livemin_*")}) < 2:
            assert time.monotonic() < deadline + POLL_SECONDS, "no worker replaced the dead one"
            time.sleep(0.1)
        for _ in range(SCRAPES):
            assert_counted(httpx.get(f"{server.url}/metrics").text, WORKER_REQUESTS)
        server.stop()
    assert "Application shutdown complete" in server.output()
    assert len(read_event_log(events).lists) == WORKER_REQUESTS


def assert_counted(text: str, requests: int) -> None:
    """One scrape, whichever worker answered it, counts every list request exactly once."""
    found = samples(text)
    answered = sum(
        count
        for (name, labels), count in found.items()
        if name == "segue_http_requests_total" and dict(labels)["route"] == LIST_ROUTE
    )
    assert answered == requests
    served = (
        "segue_lists_served_total",
        frozenset({"task": "next-song", "route": LIST_ROUTE}.items()),
    )
    assert found[served] == requests


def series_named_by_the_deploy_rules() -> set[str]:
    """Every segue_* series the recording and alert rules read."""
    names = set()
    for path in DEPLOY.glob("*.yml"):
        names.update(re.findall(r"\b(segue_[a-z0-9_]+)", path.read_text()))
    assert names, f"no segue_* series found under {DEPLOY}"
    return names
