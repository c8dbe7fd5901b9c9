"""ServingMetrics on its own: the names, labels and values a scraper reads, one registry per app."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from segue.monitoring.prometheus import ServingMetrics


def samples(metrics: ServingMetrics) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_requests_are_counted_and_timed_by_route_method_and_status() -> None:
    metrics = ServingMetrics()
    for seconds in (0.002, 0.004):
        metrics.observe_request("/v1/next-songs", "POST", 200, seconds)
    metrics.observe_request("/v1/next-songs", "POST", 422, 0.001)
    found = samples(metrics)
    ok = {"route": "/v1/next-songs", "method": "POST", "status": "200"}
    assert found[("segue_http_requests_total", frozenset(ok.items()))] == 2
    assert found[("segue_http_request_duration_seconds_count", frozenset(ok.items()))] == 2
    assert (
        abs(found[("segue_http_request_duration_seconds_sum", frozenset(ok.items()))] - 0.006)
        < 1e-9
    )
    invalid = {**ok, "status": "422"}
    assert found[("segue_http_requests_total", frozenset(invalid.items()))] == 1


def test_fallbacks_reloads_and_the_serving_version() -> None:
    metrics = ServingMetrics()
    metrics.record_fallback("user-items", "unknown user")
    metrics.record_reload("next-song", "dev.segue-next-song", "3", "ease")
    metrics.record_failed_reload("next-song")
    found = samples(metrics)
    fallback = {"task": "user-items", "reason": "unknown user"}
    assert found[("segue_fallbacks_total", frozenset(fallback.items()))] == 1
    assert found[("segue_model_reloads_total", frozenset({"task": "next-song"}.items()))] == 1
    failed = ("segue_model_reload_failures_total", frozenset({"task": "next-song"}.items()))
    assert found[failed] == 1
    info = {"task": "next-song", "name": "dev.segue-next-song", "version": "3", "algorithm": "ease"}
    assert found[("segue_serving_model_info", frozenset(info.items()))] == 1


def test_each_instance_has_its_own_registry() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    first.observe_request("/healthz", "GET", 200, 0.001)
    labels = frozenset({"route": "/healthz", "method": "GET", "status": "200"}.items())
    assert samples(first)[("segue_http_requests_total", labels)] == 1
    assert ("segue_http_requests_total", labels) not in samples(second)
    assert first.content_type.startswith("text/plain")
