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
from segue.jobs.engines import ScorerFit, fit_here, scorer_fit
from segue.jobs.memory import PeakMemory
from segue.models.base import TASKS, Scorer, create_model, model_class
from segue.models.distributed import join_process_group
from segue.models.tuned import resolve_params
from segue.monitoring.drift import reference_profile
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
    engine: str = "local",
    workers: int | None = None,
) -> TrainingResult:
    """Split the dataset, fit the model, measure it on validation and test, record an MLflow run.

    ``params`` override the settings and the tuned config. ``leaky`` (random-holdout only)
    reproduces the original design's inflated figure and is labelled wherever it is recorded.
    ``engine`` "ray" fits on ``workers`` Ray Train workers (``segue.jobs.engines``); started by
    torchrun, every rank runs this job and rank 0 alone records the run.
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
        fit=scorer_fit(settings.distributed, engine, workers),
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
    fit: ScorerFit = fit_here,
) -> TrainingResult:
    """Fit ``algorithm`` with exactly ``params`` on ``split`` and measure it (one MLflow run)."""
    check_task_and_algorithm(task, algorithm)
    world = join_process_group(
        settings.distributed.collective_timeout_seconds, settings.distributed.backend
    )
    track = track and world.is_primary  # one run per training: rank 0's
    scorer = create_model(
        algorithm,
        params,
        seed=settings.evaluation.seed,
        validation_k=settings.evaluation.k,
        memory_limit_gb=settings.training.memory_limit_gb,
    )
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
            scorer = fit(scorer, split.train, validation)
            fit_seconds = time.perf_counter() - started
        if not world.is_primary:
            # The ranks fitted the same weights together; rank 0 alone measures and records them.
            return TrainingResult(
                task,
                scorer,
                dict(params),
                split,
                dataset,
                validation_metrics={},
                test_metrics={},
                run_id=None,
                fit_seconds=fit_seconds,
                peak_memory_mb=memory.peak_mb,
            )
        cutoffs = evaluation_cutoffs(settings)
        counts = split.train.item_counts()
        validation_metrics = protocol.evaluate(
            scorer, split.validation, cutoffs, item_counts=counts
        )
        if scorer.refit_with_validation and len(split.validation) and not is_leaky(split.protocol):
            with PeakMemory() as memory:
                started = time.perf_counter()
                scorer = fit(scorer, with_validation(split), None)
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


FIT_ON_ALL = "all"  # the registered model: refit on every interaction of the dataset
FIT_ON_TRAIN = "train"  # the evaluated model: fit on the split's training rows


@dataclass(frozen=True)
class ServingFit:
    """The model that is registered: the evaluated algorithm and config fit again on all of the
    dataset, once the split has measured it."""

    scorer: Scorer
    rows: int  # interactions it was fit on: every interaction of the dataset
    epochs: int | None  # neural models: the epoch count early stopping chose; else None
    seconds: float


def chosen_epochs(scorer: Scorer) -> int | None:
    """The epoch whose weights early stopping kept (the first best validation NDCG@k), the last
    epoch when training ran without validation, None for a model trained without epochs."""
    history = scorer.training_history
    if not history:
        return None
    metric = f"val_ndcg_at_{scorer.validation_k}"
    measured = [record for record in history if metric in record]
    if not measured:
        return int(history[-1]["epoch"])
    return int(max(measured, key=lambda record: record[metric])["epoch"])


def evaluated_fit_rows(result: TrainingResult) -> int:
    """How many interactions the evaluated model was fit on (train, plus validation targets for
    the closed-form models refitted before the test evaluation)."""
    split = result.split
    if result.model.refit_with_validation and len(split.validation) and not result.leaky:
        return with_validation(split).n_interactions
    return split.train.n_interactions


def fit_on_all_data(result: TrainingResult) -> ServingFit:
    """Fit ``result``'s algorithm with the same params again on every interaction of its dataset.

    The split's test targets are what the evaluation scored the model on; the model that serves
    should know them too. Neural models train for the epoch count early stopping chose, without
    validation (there is nothing left to validate on).
    """
    dataset = result.dataset
    everything = dataset.sequences(history_order(dataset))
    params = dict(result.params)
    epochs = chosen_epochs(result.model)
    if epochs is not None and "epochs" in result.model.config_class.model_fields:
        params["epochs"] = epochs
    scorer = create_model(
        result.model.name,
        params,
        seed=result.model.seed,
        validation_k=result.model.validation_k,
        memory_limit_gb=result.model.memory_limit_gb,
    )
    started = time.perf_counter()
    scorer.fit(everything)
    return ServingFit(scorer, everything.n_interactions, epochs, time.perf_counter() - started)


def package_from_training(
    result: TrainingResult, serving: ServingFit | None = None
) -> ModelPackage:
    """The servable package of a training run: scorer, catalogue, known histories, provenance.

    With ``serving`` (from :func:`fit_on_all_data`) the package holds the model refit on all of
    the dataset (``fit_on`` "all"); without it, the evaluated model (``fit_on`` "train"). Either
    way ``metrics`` are the split's test metrics and ``evaluated_on`` names that split.
    User-items packages keep every user's full known history (to answer "recommend for user u"
    and to exclude what u already has); next-song requests carry their own songs. The package
    also holds the input profile of its training data (``reference.json``), so monitoring can
    measure drift without the data.
    """
    dataset = result.dataset
    sequences = dataset.sequences(history_order(dataset))
    histories = histories_by_id(sequences) if result.task == "user-items" else {}
    counts = dataset.items.sort_values("item", kind="stable")["count"].to_numpy()
    scorer = serving.scorer if serving is not None else result.model
    evaluated_rows = evaluated_fit_rows(result)
    fit = (
        {"fit_on": FIT_ON_ALL, "fit_rows": serving.rows}
        if serving is not None
        else {"fit_on": FIT_ON_TRAIN, "fit_rows": evaluated_rows}
    )
    if serving is not None and serving.epochs is not None:
        fit["fit_epochs"] = serving.epochs
    return ModelPackage(
        task=result.task,
        scorer=scorer,
        items=dataset.items,
        user_histories=histories,
        aliases=dataset.aliases,
        metadata={
            "dataset_fingerprint": dataset.fingerprint,
            "dataset": {
                "directory": str(dataset.directory),
                "kind": dataset.kind,
                "n_items": dataset.n_items,
                "n_interactions": len(dataset.interactions),
            },
            "split": {
                "protocol": result.split.protocol,
                "seed": result.split.seed,
                "description": result.split.description,
            },
            **fit,
            "evaluated_on": {
                "protocol": result.split.protocol,
                "seed": result.split.seed,
                "fit_rows": evaluated_rows,
            },
            "metrics": result.test_metrics,
            "validation_metrics": result.validation_metrics,
            "config": scorer.describe(),
            "run_id": result.run_id or "",
        },
        reference=reference_profile(result.task, sequences, counts, seed=result.split.seed),
    )
