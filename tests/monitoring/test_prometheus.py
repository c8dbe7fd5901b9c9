"""ServingMetrics on its own: the names, labels and values a scraper reads, one registry per app."""

from __future__ import annotations

import json

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


def labels(**values: str) -> frozenset:
    return frozenset(values.items())


def test_every_per_task_series_starts_at_zero() -> None:
    metrics = ServingMetrics()
    metrics.start({"next-song": ["/v1/next-songs"]}, ["no known songs"])
    found = samples(metrics)
    route = labels(task="next-song", route="/v1/next-songs")
    assert found[("segue_lists_served_total", route)] == 0
    for rule in ("seen", "excluded", "ban_list", "artist_cap"):
        removed = labels(task="next-song", rule=rule)
        assert found[("segue_postprocess_removed_items_total", removed)] == 0
    assert found[("segue_fallbacks_total", labels(task="next-song", reason="no known songs"))] == 0
    assert found[("segue_models_loaded", labels(task="next-song"))] == 0
    assert found[("segue_model_reload_failures_total", labels(task="next-song"))] == 0
    assert found[("segue_unmatched_inputs_total", labels(task="next-song"))] == 0
    assert found[("segue_feedback_events_total", labels(type="click"))] == 0
    assert found[("segue_events_dropped_total", frozenset())] == 0
    assert found[("segue_event_log_queue_depth", frozenset())] == 0


def test_served_lists_feedback_and_dropped_events_are_counted() -> None:
    metrics = ServingMetrics()
    metrics.record_list("next-song", "/v1/next-songs", 5, 2, (3, 0, 1, 0))
    metrics.record_list("next-song", "/v1/next-songs", 0, 0, (0, 0, 0, 0))
    metrics.record_feedback({"impression": 5, "click": 1})
    metrics.record_dropped_events(3)
    metrics.queue_depth_source = lambda: 7
    found = samples(metrics)
    route = labels(task="next-song", route="/v1/next-songs")
    assert found[("segue_lists_served_total", route)] == 2
    assert found[("segue_list_length_bucket", labels(task="next-song", le="0.0"))] == 1
    assert found[("segue_list_length_bucket", labels(task="next-song", le="5.0"))] == 2
    assert found[("segue_unmatched_inputs_total", labels(task="next-song"))] == 2
    seen = labels(task="next-song", rule="seen")
    assert found[("segue_postprocess_removed_items_total", seen)] == 3
    banned = labels(task="next-song", rule="ban_list")
    assert found[("segue_postprocess_removed_items_total", banned)] == 1
    assert found[("segue_feedback_events_total", labels(type="impression"))] == 5
    assert found[("segue_events_dropped_total", frozenset())] == 3
    assert found[("segue_event_log_queue_depth", frozenset())] == 7


def test_a_new_version_replaces_the_serving_model_series() -> None:
    metrics = ServingMetrics()
    metrics.record_reload("next-song", "dev.segue-next-song", "3", "ease")
    metrics.record_reload("next-song", "dev.segue-next-song", "4", "ease")
    serving = [key for key in samples(metrics) if key[0] == "segue_serving_model_info"]
    assert [dict(key[1])["version"] for key in serving] == ["4"]
    assert samples(metrics)[("segue_models_loaded", labels(task="next-song"))] == 1


def test_monitoring_alerts_follow_the_latest_check_file(tmp_path) -> None:
    check = tmp_path / "check.json"
    metrics = ServingMetrics(alerts_file=check)
    assert not [key for key in samples(metrics) if key[0] == "segue_monitoring_alert"]
    check.write_text(
        json.dumps(
            {
                "checked_at": "2026-03-01T10:00:00+00:00",
                "status": "alert",
                "checks": [
                    {"check": "banned_items_served", "kind": "guardrail", "alert": True},
                    {"check": "drift_new_users", "kind": "drift", "alert": False},
                ],
            }
        )
    )
    found = samples(metrics)
    assert found[("segue_monitoring_alert", labels(check="banned_items_served"))] == 1
    assert found[("segue_monitoring_alert", labels(check="drift_new_users"))] == 0
    check.write_text("{not json")
    assert not [key for key in samples(metrics) if key[0] == "segue_monitoring_alert"]
