"""Prometheus metrics of the recommendation service, each app with its own registry.

Names follow Prometheus conventions: a ``segue_`` prefix, base units (seconds), ``_total`` on
counters. Labels are bounded sets only (route templates, methods, status codes, tasks, fallback
reasons); user ids, item keys and song strings never become labels.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)

# Bucket edges in seconds, dense where a recommender answers (1-50 ms).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED_ROUTE = "<unmatched>"


class ServingMetrics:
    """Request counts and latency, fallbacks, model reloads and the serving model version."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "segue_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "segue_http_request_duration_seconds",
            "Time from request start to the end of the response, in seconds.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Every request is counted: its labelled series are looked up once, not per request.
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.fallbacks = Counter(
            "segue_fallbacks_total",
            "Lists served from the popularity fallback instead of the model, by task and reason.",
            ["task", "reason"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "segue_model_reloads_total",
            "Model versions loaded and swapped in (start-up included), by task.",
            ["task"],
            registry=self.registry,
        )
        self.failed_reloads = Counter(
            "segue_model_reload_failures_total",
            "Attempts to load a model version that failed; the previous model kept serving.",
            ["task"],
            registry=self.registry,
        )
        self.model = Info(
            "segue_serving_model",
            "The registered model and version serving each task.",
            ["task"],
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._request_series.get((route, method, status))
        if series is None:
            labels = (route, method, str(status))
            series = self.requests.labels(*labels), self.latency.labels(*labels)
            self._request_series[(route, method, status)] = series
        count, latency = series
        count.inc()
        latency.observe(seconds)

    def record_fallback(self, task: str, reason: str) -> None:
        self.fallbacks.labels(task, reason).inc()

    def record_reload(self, task: str, name: str, version: str, algorithm: str) -> None:
        self.reloads.labels(task).inc()
        self.model.labels(task).info({"name": name, "version": version, "algorithm": algorithm})

    def record_failed_reload(self, task: str) -> None:
        self.failed_reloads.labels(task).inc()

    def render(self) -> bytes:
        """The text exposition format for ``GET /metrics``."""
        return generate_latest(self.registry)
