"""The monitoring jobs: the report, the champion re-scored on fresh data, and the check.

``run_report`` reads the event log over a window, loads each served model version's catalogue
and reference profile from the registry, computes the report (``segue.monitoring.report``),
writes ``report.json`` and ``report.html`` and logs both to an MLflow run tagged with the
versions it covers. ``evaluate_champion`` re-scores the champion on fresh data with the protocol
it was registered with (``segue.jobs.evaluate.rescore_saved_model``). ``run_check`` runs the
guardrails, the drift checks and both decline checks, and writes ``check.json`` into the event
log directory, where the server reads it to export ``segue_monitoring_alert{check}``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue.data.dataset import Dataset, item_texts
from segue.data.ingest import ingest_playlists, ingest_ratings
from segue.data.song_parser import item_artist_ids
from segue.jobs.evaluate import rescore_saved_model
from segue.monitoring.drift import two_proportion_z_test
from segue.monitoring.events import EventLog, read_event_log
from segue.monitoring.report import (
    CHECK_FILE,
    CatalogueView,
    ReportOptions,
    VersionContext,
    banned_item_keys,
    build_report,
    click_counts,
    report_click_counts,
)
from segue.monitoring.report_page import write_html
from segue.ranking.ban_list import EMPTY_BAN_LIST, BanList, BanListError, parse_ban_list
from segue.settings import Settings
from segue.tracking.package import (
    ALIASES_FILE,
    PackageError,
    alias_table,
    artist_identifier,
    read_catalogue,
    read_reference,
)
from segue.tracking.package_cache import fetch_package_dir
from segue.tracking.registry import Registry, RegistryError, open_registry
from segue.tracking.runs import open_tracking
from segue.tracking.stores import absolute_store

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"
REPORT_RUN_KIND = "monitoring-report"


class MonitoringError(ValueError):
    """A monitoring job cannot run: no event log, no champion, unreadable input."""


# -- the window and the log -------------------------------------------------------------------


def event_log_dir(settings: Settings) -> Path:
    directory = settings.monitoring.event_log_dir
    if directory is None:
        raise MonitoringError(
            "the event log is off (monitoring.event_log_dir is empty): nothing to report on"
        )
    return Path(directory)


def resolve_window(
    settings: Settings, since: datetime | None = None, until: datetime | None = None
) -> tuple[datetime, datetime]:
    """[since, until) in UTC; ``until`` defaults to now and ``since`` to
    ``monitoring.report_window_hours`` before it."""
    end = _aware(until) if until is not None else datetime.now(UTC)
    start = (
        _aware(since)
        if since is not None
        else end - timedelta(hours=settings.monitoring.report_window_hours)
    )
    if start >= end:
        raise MonitoringError(f"the window is empty: since {start} is not before until {end}")
    return start, end


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_window(
    settings: Settings, since: datetime, until: datetime, margin: timedelta
) -> EventLog:
    """The event log from ``since - margin`` to ``until + margin``: feedback on a list served in
    the window may arrive after it, and feedback in the window may answer an earlier list."""
    return read_event_log(event_log_dir(settings), since - margin, until + margin)


def read_ban_list(settings: Settings) -> BanList:
    """The configured ban list (``serving.ban_list_file``), empty when none is configured."""
    path = settings.serving.ban_list_file
    if path is None or not Path(path).exists():
        return EMPTY_BAN_LIST
    try:
        return parse_ban_list(Path(path).read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, BanListError) as error:
        raise MonitoringError(f"cannot read the ban list: {error}") from error


def version_contexts(
    settings: Settings,
    served: Iterable[tuple[str, str]],
    ban_list: BanList,
    registry: Registry | None = None,
) -> tuple[dict[tuple[str, str], VersionContext], list[str]]:
    """Catalogue, reference profile and banned keys of every served (task, version), read from
    its package in the registry (the model itself is not loaded); a version that cannot be read
    is reported in the problems and left out."""
    contexts: dict[tuple[str, str], VersionContext] = {}
    problems: list[str] = []
    wanted = sorted(set(served))
    if not wanted:
        return contexts, problems
    try:
        registry = registry or open_registry(settings)
    except Exception as error:  # the store may be unreachable; the report goes on without it
        return contexts, [f"registry unavailable: {error}"]
    for task, version in wanted:
        try:
            info = registry.get_version(registry.registered_name(task), version)
            contexts[(task, version)] = _version_context(
                fetch_package_dir(registry, info), ban_list
            )
        except (RegistryError, PackageError, OSError, ValueError) as error:
            problems.append(f"{task} version {version}: {error}")
            continue
        if contexts[(task, version)].reference is None:
            problems.append(f"{task} version {version}: its package has no reference profile")
    return contexts, problems


def _version_context(package_dir: Path, ban_list: BanList) -> VersionContext:
    items = read_catalogue(package_dir)
    if items is None:
        raise PackageError(f"{package_dir}: the package has no catalogue")
    aliases_path = package_dir / ALIASES_FILE
    aliases = pd.read_parquet(aliases_path) if aliases_path.exists() else None
    texts = item_texts(items)
    # Artists are compared the way ranking compares them (segue.tracking.package.ranking_catalogue).
    artist_ids = np.asarray(
        item_artist_ids(texts.keys, texts.artists, alias_table(aliases)), object
    )
    keys = np.asarray(texts.keys, dtype=object)
    return VersionContext(
        CatalogueView.from_items(items),
        read_reference(package_dir),
        banned_item_keys(ban_list, keys, artist_ids, artist_identifier(aliases)),
    )


def compute_report(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    task: str | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """The report of a window (see ``segue.monitoring.report.build_report``)."""
    start, end = resolve_window(settings, since, until)
    options = ReportOptions.from_settings(settings)
    log = read_window(settings, start, end, options.attribution_window)
    served = log.lists[(log.lists["served_at"] >= start) & (log.lists["served_at"] < end)]
    if task is not None:
        served = served[served["task"] == task]
    pairs = {(str(t), str(v)) for t, v in zip(served["task"], served["model_version"], strict=True)}
    contexts, problems = version_contexts(settings, pairs, read_ban_list(settings), registry)
    report = build_report(
        log,
        since=start,
        until=end,
        options=options,
        versions=contexts,
        task=task,
        skipped=log.skipped,
    )
    report["event_log_dir"] = str(event_log_dir(settings))
    report["problems"] = problems
    return report


# -- the report job ---------------------------------------------------------------------------


@dataclass
class ReportOutcome:
    """A written report: its content, its directory and the MLflow run holding it."""

    report: dict[str, Any]
    directory: Path
    run_id: str | None = None


def default_report_dir(settings: Settings, moment: datetime | None = None) -> Path:
    stamp = (moment or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return settings.monitoring.report_dir / stamp


def run_report(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    task: str | None = None,
    out_dir: str | Path | None = None,
    track: bool = True,
    registry: Registry | None = None,
) -> ReportOutcome:
    """Compute the report, write ``report.json`` and ``report.html`` and log them to MLflow.

    A report over an empty window is written (it says so) but not logged: it covers no model.
    """
    settings = absolute_store(settings)
    report = compute_report(settings, since=since, until=until, task=task, registry=registry)
    directory = Path(out_dir) if out_dir is not None else default_report_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / REPORT_FILE, report)
    write_html(report, directory)
    outcome = ReportOutcome(report, directory)
    if track and not report["empty"]:
        outcome.run_id = log_report(settings, report, directory)
    return outcome


def log_report(settings: Settings, report: Mapping[str, Any], directory: Path) -> str:
    """One MLflow run holding the report's files, its headline figures as metrics, and tags
    naming the model versions it covers (``segue.model_version.<task>``)."""
    store = open_tracking(settings)
    versions: dict[str, list[str]] = {}
    for group in report["groups"]:
        versions.setdefault(group["task"], []).append(group["model_version"])
    tags = {
        "segue.kind": REPORT_RUN_KIND,
        "segue.window.since": report["window"]["since"],
        "segue.window.until": report["window"]["until"],
        "segue.alerts": str(len(report["alerts"])),
        "segue.model_versions": ", ".join(
            f"{task}:{version}" for task, found in versions.items() for version in found
        ),
        **{f"segue.model_version.{task}": ",".join(found) for task, found in versions.items()},
    }
    run_id = store.start_run("monitoring report", tags)
    try:
        store.log_metrics(run_id, report_metrics(report))
        store.log_artifacts(run_id, directory, "monitoring")
    except BaseException:
        store.finish_run(run_id, failed=True)
        raise
    store.finish_run(run_id)
    return run_id


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """Every numeric figure of every group, named ``<task>.v<version>.<figure>``."""
    metrics: dict[str, float] = {"alerts": float(len(report["alerts"]))}
    for group in report["groups"]:
        prefix = f"{group['task']}.v{group['model_version']}."
        for section in ("service", "outcomes", "guardrails", "output_health"):
            for key, value in group[section].items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    metrics[prefix + key] = float(value)
    return metrics


def _write_json(path: Path, content: Any) -> None:
    """Write JSON through a temporary file renamed into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(
        json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    os.replace(temporary, path)


# -- offline decline --------------------------------------------------------------------------


@dataclass
class OfflineEvaluation:
    """The champion's recorded test metrics against the same metrics on fresh data."""

    task: str
    version: str
    protocol: str
    metric: str
    recorded: dict[str, float]
    fresh: dict[str, float]
    tolerance: float
    n_test_cases: int
    unknown_items: int

    def relative_drop(self, key: str | None = None) -> float | None:
        key = key or self.metric
        if key not in self.recorded or key not in self.fresh or self.recorded[key] <= 0:
            return None
        return (self.recorded[key] - self.fresh[key]) / self.recorded[key]

    @property
    def alert(self) -> bool:
        drop = self.relative_drop()
        return drop is not None and drop > self.tolerance

    def check(self) -> dict[str, Any]:
        drop = self.relative_drop()
        if drop is None:
            message = f"{self.metric} not comparable (recorded: {sorted(self.recorded)})"
        else:
            message = (
                f"{self.task} v{self.version} {self.metric}: {self.recorded[self.metric]:.4f} at "
                f"registration, {self.fresh[self.metric]:.4f} on fresh data "
                f"(drop {drop:.1%}, tolerance {self.tolerance:.0%})"
            )
        return {
            "check": "offline_metric_decline",
            "kind": "offline_decline",
            "value": drop,
            "threshold": self.tolerance,
            "alert": self.alert,
            "message": message,
            "task": self.task,
            "model_version": self.version,
        }


def fresh_dataset(settings: Settings, task: str, source: Path, scratch: Path) -> Dataset:
    """``source`` when it is an ingested dataset, else its raw files ingested into ``scratch``."""
    if (source / "dataset.json").exists():
        return Dataset.load(source)
    if not source.exists():
        raise MonitoringError(f"{source}: no such file or directory")
    if task == "next-song":
        return ingest_playlists([source], scratch, settings.data, progress=False).dataset
    return ingest_ratings(source, scratch, settings.data, progress=False).dataset


def evaluate_champion(
    settings: Settings, task: str, data: str | Path, *, registry: Registry | None = None
) -> OfflineEvaluation:
    """Re-score the champion of ``task`` on fresh data with the protocol it was registered with,
    next to the test metrics recorded at registration."""
    settings = absolute_store(settings)
    registry = registry or open_registry(settings)
    champion = registry.resolve_champion(task)
    package_dir = fetch_package_dir(registry, champion)
    with tempfile.TemporaryDirectory(prefix="segue-fresh-") as scratch:
        dataset = fresh_dataset(settings, task, Path(data), Path(scratch) / "dataset")
        result = rescore_saved_model(
            settings,
            dataset.directory,
            model_dir=package_dir,
            task=task,
            protocol=champion.protocol or None,
        )
    return OfflineEvaluation(
        task,
        champion.version,
        result.protocol,
        settings.tracking.promotion_metric,
        champion.metrics,
        result.test_metrics,
        settings.monitoring.metric_decline_tolerance,
        result.n_test_cases,
        result.unknown_items,
    )


# -- online decline ---------------------------------------------------------------------------


def online_decline_checks(
    settings: Settings,
    log: EventLog,
    since: datetime,
    until: datetime,
    *,
    task: str | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Click-through of the window against the previous window of the same length (or a saved
    report's), per task, with a one-sided two-proportion z-test.

    The check alerts when the drop is significant (p < ``monitoring.decline_p_value``) AND larger
    than ``monitoring.metric_decline_tolerance`` (relative).
    """
    monitoring = settings.monitoring
    options = ReportOptions.from_settings(settings)
    current = click_counts(log, since=since, until=until, options=options, task=task)
    if baseline is not None:
        before = report_click_counts(baseline)
        against = f"the report of {baseline.get('window', {}).get('since', '?')}"
    else:
        before = click_counts(
            log, since=since - (until - since), until=since, options=options, task=task
        )
        against = "the previous window"
    checks = []
    for name, (clicks, impressions) in sorted(current.items()):
        base_clicks, base_impressions = before.get(name, (0, 0))
        check = {
            "check": "online_ctr_decline",
            "kind": "online_decline",
            "value": None,
            "threshold": monitoring.metric_decline_tolerance,
            "alert": False,
            "task": name,
        }
        least = monitoring.decline_min_impressions
        if impressions < least or base_impressions < least:
            check["message"] = (
                f"{name}: not tested, {impressions} impressions now and {base_impressions} in "
                f"{against} (at least {least} each)"
            )
            checks.append(check)
            continue
        rate, base_rate = clicks / impressions, base_clicks / base_impressions
        drop = (base_rate - rate) / base_rate if base_rate > 0 else 0.0
        _, p_value = two_proportion_z_test(clicks, impressions, base_clicks, base_impressions)
        alert = drop > monitoring.metric_decline_tolerance and p_value < monitoring.decline_p_value
        check.update(
            value=drop,
            alert=alert,
            p_value=p_value,
            message=(
                f"{name}: click-through {rate:.3f} against {base_rate:.3f} in {against} "
                f"(drop {drop:.1%}, tolerance {monitoring.metric_decline_tolerance:.0%}; "
                f"two-proportion z-test p={p_value:.2g}, alpha {monitoring.decline_p_value})"
            ),
        )
        checks.append(check)
    return checks


# -- the check --------------------------------------------------------------------------------

HEALTHY, ALERT, ERROR = "healthy", "alert", "error"
EXIT_CODES = {HEALTHY: 0, ALERT: 1, ERROR: 2}


@dataclass
class CheckOutcome:
    """What ``segue monitor check`` found; ``status`` decides its exit code."""

    status: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked_at: str = ""
    path: Path | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [check for check in self.checks if check["alert"]]

    def to_json(self) -> dict[str, Any]:
        """The ``check.json`` layout: one entry per check name (alert when any task's fired),
        with every task's entry under ``details``."""
        merged: dict[str, dict[str, Any]] = {}
        for check in self.checks:
            entry = merged.setdefault(
                check["check"],
                {
                    "check": check["check"],
                    "kind": check["kind"],
                    "value": None,
                    "threshold": check["threshold"],
                    "alert": False,
                    "message": "",
                    "details": [],
                },
            )
            entry["details"].append(check)
            if check["alert"] or (entry["value"] is None and not entry["alert"]):
                entry["value"], entry["threshold"] = check["value"], check["threshold"]
            entry["alert"] = entry["alert"] or check["alert"]
            entry["message"] = "; ".join(
                f"{d.get('task', '')} {d['message']}".strip() for d in entry["details"]
            )
        return {
            "checked_at": self.checked_at,
            "status": self.status,
            "checks": list(merged.values()),
            "notes": self.notes,
        }


def run_check(
    settings: Settings,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    task: str | None = None,
    data: str | Path | None = None,
    baseline: str | Path | None = None,
    registry: Registry | None = None,
    write: bool = True,
) -> CheckOutcome:
    """Guardrails, drift, the offline decline (with ``data``) and the online decline, written
    to ``<event_log_dir>/check.json``. A check that cannot run makes the status ``error``."""
    settings = absolute_store(settings)
    outcome = CheckOutcome(ERROR, checked_at=datetime.now(UTC).isoformat(timespec="seconds"))
    try:
        directory = event_log_dir(settings)
        start, end = resolve_window(settings, since, until)
        if data is not None and task is None:
            raise MonitoringError("--data needs --task: fresh data belongs to one task")
        saved = _read_baseline(baseline) if baseline is not None else None
        registry = registry or _maybe_registry(settings, outcome)
        report = compute_report(settings, since=start, until=end, task=task, registry=registry)
        outcome.notes += report["problems"]
        outcome.notes += [f"skipped {s['path']}: {s['reason']}" for s in report["skipped_files"]]
        if report["empty"]:
            outcome.notes.append(report["message"])
        outcome.checks += report["checks"]
        options = ReportOptions.from_settings(settings)
        log = read_window(settings, start - (end - start), end, options.attribution_window)
        outcome.checks += online_decline_checks(
            settings, log, start, end, task=task, baseline=saved
        )
        if data is not None:
            assert task is not None
            outcome.checks.append(
                evaluate_champion(settings, task, data, registry=registry).check()
            )
        outcome.status = ALERT if outcome.alerts else HEALTHY
    except (MonitoringError, RegistryError, ValueError, OSError) as error:
        outcome.status = ERROR
        outcome.notes.append(f"could not run: {error}")
        directory = settings.monitoring.event_log_dir
    if write and directory is not None:
        outcome.path = Path(directory) / CHECK_FILE
        try:
            _write_json(outcome.path, outcome.to_json())
        except OSError as error:
            outcome.notes.append(f"cannot write {outcome.path}: {error}")
            outcome.path = None
    return outcome


def _maybe_registry(settings: Settings, outcome: CheckOutcome) -> Registry | None:
    try:
        return open_registry(settings)
    except Exception as error:  # drift is then untested, and said so
        outcome.notes.append(f"registry unavailable: {error}")
        return None


def _read_baseline(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MonitoringError(f"{path}: not a readable report.json: {error}") from error
