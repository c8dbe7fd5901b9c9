"""The request metrics layer and GET /metrics: Prometheus text a scraper and an alert rule can
rely on, each request counted once whichever path answered it."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from segue.serving.app import create_app

from .support import PackageLoader, settings_with

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
