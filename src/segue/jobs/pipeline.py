"""The retraining pipeline: ingest -> train and evaluate -> register -> promote, as one command.

The register step refits the evaluated algorithm and config on all of the dataset (the split's
test targets included) and registers that model; its test metrics from the split stay the
promotion gate's evidence. ``segue train --register`` runs the same step (``register_training``).

This is what a scheduler runs when new data arrives:
``segue pipeline run --task T --data PATH``. Every step is timed and reported in one summary;
the first step that fails stops the job, and since promotion is the last step, a failure
anywhere leaves the champion where it was. The same data, settings and model give the same
dataset fingerprint, split and model (every seed comes from the settings).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from segue.data.dataset import Dataset
from segue.data.ingest import ingest_playlists, ingest_ratings
from segue.jobs.promote import promote as run_promotion
from segue.jobs.train import (
    TrainingError,
    TrainingResult,
    check_task_and_algorithm,
    fit_on_all_data,
    package_from_training,
    run_training,
)
from segue.models.distributed import launched_world
from segue.settings import Settings, SettingsError
from segue.tracking.package import ModelPackage
from segue.tracking.promotion import PromotionResult
from segue.tracking.registry import Registry, RegistryError, VersionInfo, open_registry
from segue.tracking.stores import absolute_store

log = logging.getLogger(__name__)

STEPS: tuple[str, ...] = ("ingest", "train+evaluate", "register", "promote")
_T = TypeVar("_T")

# Registry tags of how a version was fit and measured (its metrics are the split's test metrics).
TAG_FIT_ON = "segue.fit_on"
TAG_FIT_ROWS = "segue.fit_rows"
TAG_EVALUATED_ON = "segue.evaluated_on"


@dataclass
class StepReport:
    """One step of the job: ok, failed or skipped, how long it took, and what it produced."""

    name: str
    status: str = "skipped"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class PipelineSummary:
    """Everything one pipeline run did; ``ok`` is False when any step failed."""

    task: str
    data_path: Path
    algorithm: str
    steps: list[StepReport] = field(default_factory=list)
    dataset_dir: Path | None = None
    run_id: str | None = None
    version: str | None = None
    promotion: PromotionResult | None = None
    champion: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def failed_step(self) -> str | None:
        return next((step.name for step in self.steps if step.status == "failed"), None)


def run_pipeline(
    settings: Settings,
    task: str,
    data_path: str | Path,
    *,
    algorithm: str | None = None,
    protocol: str | None = None,
    params: dict[str, Any] | None = None,
    dataset_dir: str | Path | None = None,
    promote: bool = True,
    progress: bool = True,
) -> PipelineSummary:
    """Run the job on ``data_path`` (raw files, or a dataset ``segue ingest`` already wrote).

    Raw data is ingested into ``dataset_dir`` (default ``<data.root>/pipeline/<task>``). An
    unknown task or algorithm raises ``TrainingError`` before any step runs; a step that fails is
    reported in the summary, not raised. One registry (one client) serves every step.
    """
    if launched_world().world_size > 1:
        # Every rank would ingest, register and promote: the pipeline is one process, and only
        # its training step scales out (segue train --engine ray --register).
        raise TrainingError(
            "segue pipeline run runs as one process, not under torchrun; to train on several "
            "workers use `segue train --engine ray --register`, then `segue promote`"
        )
    # Every step must reach the same store, whatever the working directory does meanwhile.
    settings = absolute_store(settings)
    algorithm = algorithm or default_algorithm(settings, task)
    check_task_and_algorithm(task, algorithm)
    registry = open_registry(settings)
    source = Path(data_path)
    target = Path(dataset_dir) if dataset_dir else settings.data.root / "pipeline" / task
    summary = PipelineSummary(task, source, algorithm, [StepReport(name) for name in STEPS])
    steps = {step.name: step for step in summary.steps}

    def step(name: str, work: Callable[[], _T], describe: Callable[[_T], str]) -> _T:
        report = steps[name]
        started = time.perf_counter()
        try:
            value = work()
        except Exception as error:  # the job reports any failure and stops; nothing is promoted
            report.status, report.detail = "failed", f"{type(error).__name__}: {error}"
            report.seconds = time.perf_counter() - started
            summary.error = f"{name} failed: {error}"
            log.warning("pipeline %s: %s", name, report.detail)
            raise _StepFailed from error
        report.status, report.detail = "ok", describe(value)
        report.seconds = time.perf_counter() - started
        return value

    try:
        dataset = step(
            "ingest",
            lambda: _ingest(settings, task, source, target, progress),
            lambda found: f"{found.directory} (fingerprint {found.fingerprint})",
        )
        summary.dataset_dir = dataset.directory
        result = step(
            "train+evaluate",
            lambda: run_training(
                settings,
                task,
                algorithm,
                dataset.directory,
                protocol=protocol,
                params=params,
                track=True,
                progress=progress,
            ),
            lambda trained: _describe_training(settings, trained),
        )
        summary.run_id = result.run_id
        version = step(
            "register",
            lambda: register_training(registry, result),
            _describe_registration,
        )
        summary.version = version.version
        if promote:
            summary.promotion = step(
                "promote",
                lambda: run_promotion(
                    settings,
                    task,
                    version=version.version,
                    data_dir=dataset.directory,
                    registry=registry,
                ),
                _describe_promotion,
            )
    except _StepFailed:
        pass
    summary.champion = _current_champion(registry, task)
    return summary


def default_algorithm(settings: Settings, task: str) -> str:
    """The task's algorithm when none is named (``training.default_algorithm_*``)."""
    try:
        return settings.default_algorithm(task)
    except SettingsError as error:
        raise TrainingError(str(error)) from error


def register_training(registry: Registry, result: TrainingResult) -> VersionInfo:
    """The register step: refit on all of the dataset, package, publish as ``challenger``.

    ``segue pipeline run`` and ``segue train --register`` both register through here. The
    version's metrics are the split's test metrics (the gate's evidence); its tags say it was fit
    on all rows and which split measured it.
    """
    if result.leaky:
        raise RegistryError(
            f"a {result.protocol} model is never registered: it trained on its test targets; "
            "train without --leaky"
        )
    package = package_from_training(result, fit_on_all_data(result))
    info = registry.publish(package, run_id=result.run_id)
    registry.set_tags(info.name, info.version, fit_tags(package))
    return registry.get_version(info.name, info.version)


def fit_tags(package: ModelPackage) -> dict[str, str]:
    """The registry tags of how a package was fit (rows, "all") and evaluated (split, seed)."""
    evaluated = package.metadata.get("evaluated_on", {})
    return {
        TAG_FIT_ON: str(package.metadata.get("fit_on", "")),
        TAG_FIT_ROWS: str(package.metadata.get("fit_rows", "")),
        TAG_EVALUATED_ON: f"{evaluated.get('protocol', '?')} seed {evaluated.get('seed', '?')}",
    }


class _StepFailed(Exception):
    """Internal: a step failed and was recorded in the summary."""


def _ingest(settings: Settings, task: str, source: Path, target: Path, progress: bool) -> Dataset:
    """The dataset at ``source`` when it already is one, else ingest the raw files into ``target``."""
    if (source / "dataset.json").exists():
        return Dataset.load(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or directory")
    if task == "next-song":
        return ingest_playlists([source], target, settings.data, progress=progress).dataset
    return ingest_ratings(source, target, settings.data, progress=progress).dataset


def _describe_training(settings: Settings, result: TrainingResult) -> str:
    headline = settings.tracking.promotion_metric
    value = result.test_metrics.get(headline)
    shown = f"{headline}={value:.4f}" if value is not None else "no headline metric"
    return f"{result.model.name} on {result.protocol}: test {shown} (run {result.run_id})"


def _describe_registration(info: VersionInfo) -> str:
    return f"refit on {describe_fit(info)}; {info.name} version {info.version} is challenger"


def describe_fit(info: VersionInfo) -> str:
    """``all 1,234 rows`` (or ``train 987 rows``) from a version's tags; "" when it has none."""
    fit_on, rows = info.tags.get(TAG_FIT_ON, ""), info.tags.get(TAG_FIT_ROWS, "")
    if not fit_on:
        return ""
    return f"{fit_on} {int(rows):,} rows" if rows.isdigit() else fit_on


def _describe_promotion(result: PromotionResult) -> str:
    verdict = "promoted" if result.moved else "kept the champion"
    return f"{verdict}: {result.reason}"


def _current_champion(registry: Registry, task: str) -> str | None:
    try:
        return registry.champion_version(task)
    except RegistryError:  # an unreachable store is already reported by the failed step
        return None
