"""The training job: dataset -> split -> fit -> validation and test metrics -> one MLflow run.

``run_training`` is what ``segue train`` and the pipeline call. ``train_on_split`` is the same job
on a split already made, so a benchmark or a tuning study fits every model on one split.
``package_from_training`` turns a result into the servable package the registry takes.

Hyperparameters are layered (``segue.models.tuned``): ``[models.<algorithm>]`` in the settings
< the tuned config written by ``segue tune`` < explicit ``params``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segue.data.dataset import Dataset, DatasetError
from segue.data.interactions import Split
from segue.data.splits import with_validation
from segue.evaluation.protocols import (
    build_split,
    default_protocol,
    get_protocol,
    history_order,
    is_leaky,
)
from segue.evaluation.report import LeaderboardRow, plot_learning_curve
from segue.jobs.memory import PeakMemory
from segue.models.base import TASKS, Scorer, create_model, model_class
from segue.models.tuned import resolve_params
from segue.settings import Settings
from segue.tracking.package import ModelPackage, histories_by_id
from segue.tracking.runs import VALIDATION_PREFIX, TrackingStore, open_tracking

logger = logging.getLogger(__name__)

CONFIG_ARTIFACT = "config.json"
LEARNING_CURVE_ARTIFACT = "learning_curve.png"


class TrainingError(ValueError):
    """A task, model or protocol that does not exist or does not fit together."""


@dataclass
class TrainingResult:
    """A fitted model, the split it was fitted and measured on, its metrics and its run."""

    task: str
    model: Scorer
    params: dict[str, Any]
    split: Split
    dataset: Dataset
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    run_id: str | None
    fit_seconds: float
    peak_memory_mb: float

    @property
    def protocol(self) -> str:
        """The protocol as recorded; ends in ``-leaky`` for the leaky comparison."""
        return self.split.protocol

    @property
    def leaky(self) -> bool:
        return is_leaky(self.split.protocol)

    def leaderboard_row(self) -> LeaderboardRow:
        return LeaderboardRow(
            self.model.name,
            self.test_metrics,
            self.fit_seconds,
            self.peak_memory_mb,
            self.run_id,
            self.leaky,
        )


def check_task_and_algorithm(task: str, algorithm: str) -> None:
    """Refuse an unknown task, an unknown algorithm, or one that does not serve the task."""
    if task not in TASKS:
        raise TrainingError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    cls = model_class(algorithm)  # raises ModelError (a ValueError) for an unknown name
    if task not in cls.tasks:
        raise TrainingError(
            f"model {algorithm!r} does not serve task {task!r} (it serves {', '.join(sorted(cls.tasks))})"
        )


def evaluation_cutoffs(settings: Settings) -> tuple[int, ...]:
    return tuple(sorted({*settings.evaluation.cutoffs, settings.evaluation.k}))


def load_dataset(dataset_dir: str | Path) -> Dataset:
    try:
        return Dataset.load(dataset_dir)
    except DatasetError:
        raise
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(f"{dataset_dir}: cannot read the dataset: {error}") from error


def prepare_split(
    settings: Settings,
    task: str,
    dataset: Dataset,
    protocol: str | None = None,
    *,
    leaky: bool = False,
) -> Split:
    """The split the named protocol (default: the task's) makes of ``dataset``."""
    name = protocol or default_protocol(task)
    return build_split(dataset, name, settings.evaluation, leaky=leaky)


def run_training(
    settings: Settings,
    task: str,
    algorithm: str,
    dataset_dir: str | Path,
    *,
    protocol: str | None = None,
    params: dict[str, Any] | None = None,
    track: bool = True,
    leaky: bool = False,
    progress: bool = True,
) -> TrainingResult:
    """Split the dataset, fit the model, measure it on validation and test, record an MLflow run.

    ``params`` override the settings and the tuned config. ``leaky`` (random-holdout only)
    reproduces the original design's inflated figure and is labelled wherever it is recorded.
    """
    check_task_and_algorithm(task, algorithm)
    dataset = load_dataset(dataset_dir)
    split = prepare_split(settings, task, dataset, protocol, leaky=leaky)
    return train_on_split(
        settings,
        task,
        algorithm,
        dataset,
        split,
        params=resolve_params(settings, task, algorithm, params),
        track=track,
        progress=progress,
    )


def train_on_split(
    settings: Settings,
    task: str,
    algorithm: str,
    dataset: Dataset,
    split: Split,
    *,
    params: dict[str, Any],
    track: bool = True,
    store: TrackingStore | None = None,
    parent_run_id: str | None = None,
    run_name: str | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Fit ``algorithm`` with exactly ``params`` on ``split`` and measure it (one MLflow run)."""
    check_task_and_algorithm(task, algorithm)
    scorer = create_model(algorithm, params, seed=settings.evaluation.seed)
    protocol = get_protocol(split.protocol)
    run_id = None
    if track:
        store = store or open_tracking(settings)
        label = f"{task}/{algorithm}" + (" [leaky]" if is_leaky(split.protocol) else "")
        run_id = store.start_run(
            run_name or label,
            run_tags(task, algorithm, dataset, split),
            parent_run_id=parent_run_id,
        )
    try:
        validation = split.validation if len(split.validation) else None
        with PeakMemory() as memory:
            started = time.perf_counter()
            scorer.fit(split.train, validation)
            fit_seconds = time.perf_counter() - started
        cutoffs = evaluation_cutoffs(settings)
        counts = split.train.item_counts()
        validation_metrics = protocol.evaluate(
            scorer, split.validation, cutoffs, item_counts=counts
        )
        if scorer.refit_with_validation and len(split.validation) and not is_leaky(split.protocol):
            with PeakMemory() as memory:
                started = time.perf_counter()
                scorer.fit(with_validation(split))
                fit_seconds = time.perf_counter() - started
        test_metrics = protocol.evaluate(
            scorer, split.test, cutoffs, item_counts=counts, progress=progress
        )
        result = TrainingResult(
            task,
            scorer,
            dict(params),
            split,
            dataset,
            validation_metrics,
            test_metrics,
            run_id,
            fit_seconds,
            memory.peak_mb,
        )
        if store is not None and run_id is not None:
            log_training_result(store, run_id, result, settings)
    except BaseException:
        if store is not None and run_id is not None:
            store.finish_run(run_id, failed=True)
        raise
    if store is not None and run_id is not None:
        store.finish_run(run_id)
    return result


def run_tags(task: str, algorithm: str, dataset: Dataset, split: Split) -> dict[str, str]:
    return {
        "segue.task": task,
        "segue.model": algorithm,
        "dataset_fingerprint": dataset.fingerprint,
        "dataset_dir": str(dataset.directory),
        "split_protocol": split.protocol,
        "split_seed": str(split.seed),
        "split": json.dumps(split.description, sort_keys=True),
        "leaky": str(is_leaky(split.protocol)).lower(),
    }


def training_config(result: TrainingResult, settings: Settings) -> dict[str, Any]:
    """Everything needed to repeat the run, as saved in ``config.json``."""
    return {
        "task": result.task,
        "model": result.model.describe(),
        "protocol": result.protocol,
        "leaky": result.leaky,
        "split": {
            "protocol": result.split.protocol,
            "seed": result.split.seed,
            "description": result.split.description,
        },
        "dataset": {
            "directory": str(result.dataset.directory),
            "kind": result.dataset.kind,
            "fingerprint": result.dataset.fingerprint,
            "n_items": result.dataset.n_items,
        },
        "evaluation": settings.evaluation.model_dump(mode="json"),
        "env": settings.env,
    }


def log_training_result(
    store: TrackingStore, run_id: str, result: TrainingResult, settings: Settings
) -> None:
    """Params, per-epoch history, final metrics, config JSON and the learning curve of a run."""
    store.log_params(
        run_id,
        {
            **result.model.describe(),
            "task": result.task,
            "protocol": result.protocol,
            "leaky": result.leaky,
            "split_seed": result.split.seed,
            "dataset_fingerprint": result.dataset.fingerprint,
        },
    )
    store.log_history(run_id, result.model.training_history)
    store.log_metrics(run_id, result.validation_metrics, prefix=VALIDATION_PREFIX)
    store.log_metrics(
        run_id,
        {
            **result.test_metrics,
            "fit_seconds": result.fit_seconds,
            "peak_memory_mb": result.peak_memory_mb,
        },
    )
    with tempfile.TemporaryDirectory(prefix="segue-run-") as scratch:
        directory = Path(scratch)
        (directory / CONFIG_ARTIFACT).write_text(
            json.dumps(training_config(result, settings), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        if result.model.training_history:
            title = f"{result.task} / {result.model.name} ({result.protocol})"
            plot_learning_curve(
                result.model.training_history, directory / LEARNING_CURVE_ARTIFACT, title
            )
        store.log_artifacts(run_id, directory)


def package_from_training(result: TrainingResult) -> ModelPackage:
    """The servable package of a training run: scorer, catalogue, known histories, provenance.

    User-items packages keep every user's full known history (to answer "recommend for user u"
    and to exclude what u already has); next-song requests carry their own songs.
    """
    dataset = result.dataset
    histories = (
        histories_by_id(dataset.sequences(history_order(dataset)))
        if result.task == "user-items"
        else {}
    )
    return ModelPackage(
        task=result.task,
        scorer=result.model,
        items=dataset.items,
        user_histories=histories,
        aliases=dataset.aliases,
        metadata={
            "dataset_fingerprint": dataset.fingerprint,
            "dataset": {
                "directory": str(dataset.directory),
                "kind": dataset.kind,
                "n_items": dataset.n_items,
            },
            "split": {
                "protocol": result.split.protocol,
                "seed": result.split.seed,
                "description": result.split.description,
            },
            "metrics": result.test_metrics,
            "validation_metrics": result.validation_metrics,
            "config": result.model.describe(),
            "run_id": result.run_id or "",
        },
    )
