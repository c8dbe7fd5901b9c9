"""Prometheus metrics of the recommendation service, each app with its own registry.

Names follow Prometheus conventions: a ``segue_`` prefix, base units (seconds), ``_total`` on
counters. Labels are bounded sets only (route templates, methods, status codes, tasks, fallback
reasons, post-processing rules, feedback types, monitoring checks); user ids, item keys and song
strings never become labels. ``deploy/prometheus`` reads these names: rename both together.

With several worker processes (``segue serve --workers N``) every worker writes its values to
files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which
``segue serve`` sets up before the workers start) and a scrape of any worker reads them all, so
counters sum over workers and never jump between scrapes. Gauges say how they combine: a task
counts as loaded only when every live worker has it (``livemin``), queue depths add up
(``livesum``). Info metrics do not exist in multiprocess mode, so the serving version is a gauge
at 1 with the version in its labels.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Bucket edges in seconds, dense where a recommender answers (1-50 ms).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Bucket edges of served list lengths: 0 (nothing could be served) is its own bucket.
LIST_LENGTH_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200)
UNMATCHED_ROUTE = "<unmatched>"
MULTIPROCESS_ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
REMOVAL_RULES = ("seen", "excluded", "ban_list", "artist_cap")
FEEDBACK_TYPES = ("impression", "click", "play", "skip", "accept")


def multiprocess_directory() -> str | None:
    """The multiprocess-mode directory of this process, or None in single-process mode."""
    return os.environ.get(MULTIPROCESS_ENVIRONMENT_VARIABLE) or None


def prepare_multiprocess_directory(directory: Path) -> None:
    """Empty (or create) ``directory`` for one server start: values of an earlier start must not
    add to this one's."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def mark_worker_dead(pid: int, directory: Path | str) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the sums)."""
    multiprocess.mark_process_dead(pid, str(directory))


class _ListSeries(NamedTuple):
    served: Any
    length: Any
    unmatched: Any
    removed: tuple[Any, ...]  # one counter child per rule, in REMOVAL_RULES order


class ServingMetrics:
    """Requests, served lists, fallbacks, post-processing, feedback, the event log and models."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self, registry: CollectorRegistry | None = None, *, alerts_file: Path | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.multiprocess_dir = multiprocess_directory()
        self.queue_depth_source: Callable[[], int] | None = None
        counter, gauge, histogram = self._factories()
        self.requests = counter(
            "segue_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
        )
        self.latency = histogram(
            "segue_http_request_duration_seconds",
            "Time from request start to the end of the response, in seconds.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
        )
        # Every request is counted: its labelled series are looked up once, not per request.
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.lists_served = counter(
            "segue_lists_served_total",
            "Recommendation lists served (fallbacks included), by task and route template.",
            ["task", "route"],
        )
        self.list_length = histogram(
            "segue_list_length",
            "Items in each served list, by task.",
            ["task"],
            buckets=LIST_LENGTH_BUCKETS,
        )
        self.unmatched_inputs = counter(
            "segue_unmatched_inputs_total",
            "Input songs or item keys of list requests that matched no catalogue item, by task.",
            ["task"],
        )
        self.removed_items = counter(
            "segue_postprocess_removed_items_total",
            "Items post-processing took out of served lists that would have competed for them, "
            "by task and rule (seen, excluded, ban_list, artist_cap).",
            ["task", "rule"],
        )
        self._list_series: dict[tuple[str, str], _ListSeries] = {}
        self.fallbacks = counter(
            "segue_fallbacks_total",
            "Lists served from the popularity fallback instead of the model, by task and reason.",
            ["task", "reason"],
        )
        self.feedback = counter(
            "segue_feedback_events_total",
            "Feedback events accepted by POST /v1/feedback, by type.",
            ["type"],
        )
        self.events_dropped = counter(
            "segue_events_dropped_total",
            "Events (served lists, feedback) dropped instead of written to the event log: the "
            "queue was full or the log could not be written.",
        )
        self.event_queue_depth = gauge(
            "segue_event_log_queue_depth",
            "Events waiting for the event log's writer thread (summed over workers).",
            multiprocess_mode="livesum",
        )
        self.reloads = counter(
            "segue_model_reloads_total",
            "Model versions loaded and swapped in (start-up included), by task.",
            ["task"],
        )
        self.failed_reloads = counter(
            "segue_model_reload_failures_total",
            "Attempts to load a model version that failed; the previous model kept serving.",
            ["task"],
        )
        self.models_loaded = gauge(
            "segue_models_loaded",
            "1 when a model serves the task (in every live worker), else 0.",
            ["task"],
            multiprocess_mode="livemin",
        )
        self.model = gauge(
            "segue_serving_model_info",
            "The registered model and version serving each task (1; 0 for a replaced version).",
            ["task", "name", "version", "algorithm"],
            multiprocess_mode="livemax",
        )
        self._model_labels: dict[str, tuple[str, str, str]] = {}
        self.alerts = MonitoringAlertCollector(alerts_file)
        if self.multiprocess_dir is not None:
            self._scraped = CollectorRegistry()
            multiprocess.MultiProcessCollector(self._scraped, self.multiprocess_dir)
        else:
            self._scraped = self.registry
        self._scraped.register(self.alerts)

    def _factories(
        self,
    ) -> tuple[Callable[..., Counter], Callable[..., Gauge], Callable[..., Histogram]]:
        registry = self.registry

        def counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, documentation, labels, registry=registry)

        def gauge(
            name: str, documentation: str, labels: Sequence[str] = (), *, multiprocess_mode: str
        ) -> Gauge:
            return Gauge(
                name, documentation, labels, registry=registry, multiprocess_mode=multiprocess_mode
            )

        def histogram(
            name: str, documentation: str, labels: Sequence[str], *, buckets: Sequence[float]
        ) -> Histogram:
            return Histogram(name, documentation, labels, buckets=buckets, registry=registry)

        return counter, gauge, histogram

    def start(
        self,
        list_routes: Mapping[str, Iterable[str]],
        fallback_reasons: Iterable[str] = (),
    ) -> None:
        """Create every per-task series at 0, so a rate or an alert sees it before its first
        event: ``list_routes`` maps each served task to the routes that serve its lists."""
        reasons = tuple(fallback_reasons)
        for task, routes in list_routes.items():
            for route in routes:
                self._list(task, route)
            for reason in reasons:
                self.fallbacks.labels(task, reason)
            self.reloads.labels(task)
            self.failed_reloads.labels(task)
            self.models_loaded.labels(task).set(0)
        for kind in FEEDBACK_TYPES:
            self.feedback.labels(kind)
        self.event_queue_depth.set(0)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._request_series.get((route, method, status))
        if series is None:
            labels = (route, method, str(status))
            series = self.requests.labels(*labels), self.latency.labels(*labels)
            self._request_series[(route, method, status)] = series
        count, latency = series
        count.inc()
        latency.observe(seconds)

    def _list(self, task: str, route: str) -> _ListSeries:
        series = self._list_series.get((task, route))
        if series is None:
            series = _ListSeries(
                self.lists_served.labels(task, route),
                self.list_length.labels(task),
                self.unmatched_inputs.labels(task),
                tuple(self.removed_items.labels(task, rule) for rule in REMOVAL_RULES),
            )
            self._list_series[(task, route)] = series
        return series

    def record_list(
        self, task: str, route: str, length: int, unmatched: int, removed: Sequence[int]
    ) -> None:
        """One served list: its length, unmatched inputs and the items each rule took out
        (``removed`` in ``REMOVAL_RULES`` order)."""
        series = self._list(task, route)
        series.served.inc()
        series.length.observe(length)
        if unmatched:
            series.unmatched.inc(unmatched)
        for child, count in zip(series.removed, removed, strict=True):
            if count:
                child.inc(count)

    def record_fallback(self, task: str, reason: str) -> None:
        self.fallbacks.labels(task, reason).inc()

    def record_feedback(self, counts: Mapping[str, int]) -> None:
        for kind, count in counts.items():
            self.feedback.labels(kind).inc(count)

    def record_dropped_events(self, count: int) -> None:
        self.events_dropped.inc(count)

    def set_event_queue_depth(self, depth: int) -> None:
        self.event_queue_depth.set(depth)

    def record_reload(self, task: str, name: str, version: str, algorithm: str) -> None:
        self.reloads.labels(task).inc()
        labels = (name, version, algorithm)
        previous = self._model_labels.get(task)
        if previous is not None and previous != labels:
            if self.multiprocess_dir is None:
                self.model.remove(task, *previous)
            else:  # other workers' files keep the series: say it no longer serves
                self.model.labels(task, *previous).set(0)
        self._model_labels[task] = labels
        self.model.labels(task, *labels).set(1)
        self.models_loaded.labels(task).set(1)

    def record_failed_reload(self, task: str) -> None:
        self.failed_reloads.labels(task).inc()

    def render(self) -> bytes:
        """The text exposition format for ``GET /metrics`` (every worker's values)."""
        if self.queue_depth_source is not None:
            self.event_queue_depth.set(self.queue_depth_source())
        return generate_latest(self._scraped)


class MonitoringAlertCollector(Collector):
    """``segue_monitoring_alert{check}`` from the latest ``segue monitor check`` result file:
    1 for a check whose alert fired, else 0; nothing while there is no file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._cache: tuple[tuple[int, int], list[tuple[str, float]]] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for check, value in self._checks():
            family.add_metric([check], value)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "segue_monitoring_alert",
            "1 when the monitoring check fired in the latest `segue monitor check`, else 0.",
            labels=["check"],
        )

    def _checks(self) -> list[tuple[str, float]]:
        if self.path is None:
            return []
        try:
            status = self.path.stat()
        except OSError:
            return []
        stamp = (status.st_mtime_ns, status.st_size)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            checks = [
                (str(entry["check"]), 1.0 if entry.get("alert") else 0.0)
                for entry in document.get("checks", [])
            ]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            logger.warning("cannot read monitoring checks from %s: %s", self.path, error)
            checks = []
        self._cache = (stamp, checks)
        return checks
