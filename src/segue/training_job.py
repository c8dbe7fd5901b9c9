"""The training job: dataset -> split -> fit -> validation and test metrics -> one MLflow run.

``run_training`` is what ``segue train`` and the pipeline call. ``train_on_split`` is the same job
on a split already made, so a benchmark or a tuning study fits every model on one split.
``run_evaluation`` re-scores a saved model on a dataset.

Hyperparameters are layered, later wins: ``[models.<name>]`` in the settings < the tuned config
``<evaluation.tuned_dir>/<task>/<model>.toml`` written by ``segue tune`` < explicit ``params``.
"""

from __future__ import annotations

import gc
import json
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segue.data.dataset import Dataset, DatasetError
from segue.data.interactions import Holdout, Split
from segue.data.splits import leak_holdout_targets, with_validation
from segue.evaluation.protocols import (
    build_split,
    default_protocol,
    get_protocol,
    is_leaky,
)
from segue.evaluation.report import (
    Leaderboard,
    LeaderboardFiles,
    LeaderboardRow,
    write_leaderboard,
)
from segue.evaluation.tuning import load_tuned_params
from segue.models.base import TASKS, Scorer, load_model, model_class
from segue.settings import Settings
from segue.tracking.runs import TrackingStore, open_tracking

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


def check_task_and_model(task: str, model_name: str) -> None:
    """Refuse an unknown task, an unknown model, or a model that does not serve the task."""
    if task not in TASKS:
        raise TrainingError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    cls = model_class(model_name)  # raises ModelError (a ValueError) for an unknown name
    if task not in cls.tasks:
        raise TrainingError(
            f"model {model_name!r} does not serve task {task!r} (it serves {', '.join(sorted(cls.tasks))})"
        )


def resolve_params(
    settings: Settings, task: str, model_name: str, explicit: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Settings table < tuned config < explicit overrides."""
    return {
        **settings.model_params(model_name),
        **load_tuned_params(settings, task, model_name),
        **(explicit or {}),
    }


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
    model_name: str,
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
    check_task_and_model(task, model_name)
    dataset = load_dataset(dataset_dir)
    split = prepare_split(settings, task, dataset, protocol, leaky=leaky)
    return train_on_split(
        settings,
        task,
        model_name,
        dataset,
        split,
        params=resolve_params(settings, task, model_name, params),
        track=track,
        progress=progress,
    )


def train_on_split(
    settings: Settings,
    task: str,
    model_name: str,
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
    """Fit ``model_name`` with exactly ``params`` on ``split`` and measure it (one MLflow run)."""
    check_task_and_model(task, model_name)
    from segue.models.base import create_model

    scorer = create_model(model_name, params, seed=settings.evaluation.seed)
    protocol = get_protocol(split.protocol)
    run_id = None
    if track:
        store = store or open_tracking(settings)
        label = f"{task}/{model_name}" + (" [leaky]" if is_leaky(split.protocol) else "")
        run_id = store.start_run(
            run_name or label,
            _run_tags(task, model_name, dataset, split),
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


def _run_tags(task: str, model_name: str, dataset: Dataset, split: Split) -> dict[str, str]:
    return {
        "segue.task": task,
        "segue.model": model_name,
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
    from segue.evaluation.report import plot_learning_curve
    from segue.tracking.runs import VALIDATION_PREFIX

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


class PeakMemory:
    """Peak resident memory above the starting point, sampled by a background thread.

    Resident memory (psutil RSS) counts every allocator: NumPy, PyTorch, implicit's native code.
    Sampling every 10 ms can miss a spike shorter than that, and memory the process already held
    (freed by an earlier model and reused) does not count again.
    """

    def __init__(self, interval_seconds: float = 0.01) -> None:
        import psutil

        self.interval_seconds = interval_seconds
        self.peak_mb = 0.0
        self._process = psutil.Process()
        self._baseline = 0
        self._highest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="segue-peak-memory", daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._highest = max(self._highest, self._process.memory_info().rss)
            self._stop.wait(self.interval_seconds)

    def __enter__(self) -> PeakMemory:
        self._baseline = self._highest = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        highest = max(self._highest, self._process.memory_info().rss)
        self.peak_mb = max(highest - self._baseline, 0) / 2**20


# -- re-scoring a saved model ------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """Metrics of a saved model on a dataset's validation and test cases."""

    model: Scorer
    task: str | None
    protocol: str
    dataset: Dataset
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    n_test_cases: int
    unknown_items: int


def run_evaluation(
    settings: Settings,
    dataset_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    run_id: str | None = None,
    task: str | None = None,
    protocol: str | None = None,
) -> EvaluationResult:
    """Score a saved model (a model or package directory, or an MLflow run) on a dataset.

    The protocol defaults to the one the run recorded, then the package's, then the task's
    default. A leaky protocol is re-scored honestly: leaking is a training choice. When the
    model comes with its catalogue (a package, or a run holding one), the dataset's items are
    matched to it by key; items the model does not know count as misses.
    """
    if (model_dir is None) == (run_id is None):
        raise TrainingError("give exactly one of a model directory or a run id")
    dataset = load_dataset(dataset_dir)
    recorded: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="segue-eval-") as scratch:
        if run_id is not None:
            store = open_tracking(settings)
            recorded = store.run_tags(run_id)
            directory = store.download_saved_model(run_id, Path(scratch))
        else:
            directory = Path(model_dir)  # type: ignore[arg-type]
        scorer, package_dir = _load_scorer(directory)
        package = _read_package_meta(package_dir)
        task = task or recorded.get("segue.task") or package.get("task")
        name = (
            protocol
            or recorded.get("split_protocol")
            or package.get("protocol")
            or package.get("split", {}).get("protocol")
            or (default_protocol(task) if task else None)
        )
        if name is None:
            raise TrainingError("cannot tell the protocol: give --protocol or --task")
        split = build_split(dataset, get_protocol(name).name, settings.evaluation)
        mapping, unknown = _item_mapping(dataset, scorer, package_dir)
    validation, test = split.validation, split.test
    if mapping is not None:
        validation, test = _remap(validation, mapping), _remap(test, mapping)
    evaluator = get_protocol(name)
    cutoffs = evaluation_cutoffs(settings)
    counts = _remap_counts(split.train.item_counts(), mapping, scorer.n_items)
    return EvaluationResult(
        scorer,
        task,
        evaluator.name,
        dataset,
        evaluator.evaluate(scorer, validation, cutoffs, item_counts=counts),
        evaluator.evaluate(scorer, test, cutoffs, item_counts=counts, progress=True),
        len(test),
        unknown,
    )


def _load_scorer(directory: Path) -> tuple[Scorer, Path | None]:
    """A scorer from a ``Scorer.save`` directory or a package holding one in ``model/``."""
    from segue.models.base import CONFIG_FILE, ModelError

    if (directory / CONFIG_FILE).exists():
        package = directory.parent if (directory.parent / "items.parquet").exists() else None
        return load_model(directory), package
    if (directory / "model" / CONFIG_FILE).exists():
        return load_model(directory / "model"), directory
    raise ModelError(f"{directory}: neither a saved model nor a model package")


def _read_package_meta(package_dir: Path | None) -> dict[str, Any]:
    if package_dir is None or not (package_dir / "package.json").exists():
        return {}
    return json.loads((package_dir / "package.json").read_text(encoding="utf-8"))


def _item_mapping(
    dataset: Dataset, scorer: Scorer, package_dir: Path | None
) -> tuple[np.ndarray | None, int]:
    """Dataset item index -> model item index (-1 unknown), or None when they are the same."""
    import pandas as pd

    if package_dir is None or not (package_dir / "items.parquet").exists():
        if scorer.n_items != dataset.n_items:
            raise TrainingError(
                f"the model knows {scorer.n_items} items but the dataset has {dataset.n_items}; "
                "give a model package (with items.parquet) to match items by key"
            )
        return None, 0
    catalogue = pd.read_parquet(package_dir / "items.parquet")
    index = dict(zip(catalogue["key"].astype(str), catalogue["item"].astype(int), strict=True))
    mapping = np.array([index.get(str(key), -1) for key in dataset.items["key"]], dtype=np.int64)
    return mapping, int((mapping < 0).sum())


def _remap(holdout: Holdout, mapping: np.ndarray) -> Holdout:
    return Holdout(
        [mapping[h] for h in holdout.histories],
        [mapping[t] for t in holdout.targets],
        list(holdout.sequence_ids),
    )


def _remap_counts(counts: np.ndarray, mapping: np.ndarray | None, n_items: int) -> np.ndarray:
    if mapping is None:
        return counts
    remapped = np.zeros(n_items, dtype=np.int64)
    known = mapping >= 0
    np.add.at(remapped, mapping[known], counts[known])
    return remapped


# -- several models on one split ---------------------------------------------------------------


@dataclass
class BenchmarkResult:
    """A leaderboard of several models fitted and measured on one split."""

    leaderboard: Leaderboard
    results: list[TrainingResult]
    failures: dict[str, str]
    files: LeaderboardFiles | None
    parent_run_id: str | None


def run_benchmark(
    settings: Settings,
    task: str,
    dataset_dir: str | Path,
    model_names: list[str],
    *,
    protocol: str | None = None,
    leaky_models: list[str] | None = None,
    out_dir: str | Path | None = None,
    track: bool = True,
    title: str | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Fit every model on the same split; write and log a leaderboard.

    ``leaky_models`` are fitted a second time on the leaky variant of the split (random-holdout
    only) and appear as ``<model> (leaky)``. A model that fails is reported in ``failures`` and
    the others still run.
    """
    from tqdm.auto import tqdm

    leaky_models = list(leaky_models or [])
    for name in [*model_names, *leaky_models]:
        check_task_and_model(task, name)
    dataset = load_dataset(dataset_dir)
    split = prepare_split(settings, task, dataset, protocol)
    leaky_split = leak_holdout_targets_checked(split) if leaky_models else None
    store = open_tracking(settings) if track else None
    parent_run_id = None
    if store is not None:
        parent_run_id = store.start_run(
            f"benchmark {task}",
            {
                **_run_tags(task, "benchmark", dataset, split),
                "segue.benchmark": ",".join(model_names),
            },
        )
    jobs = [(name, split) for name in model_names]
    jobs += [(name, leaky_split) for name in leaky_models if leaky_split is not None]
    results: list[TrainingResult] = []
    failures: dict[str, str] = {}
    bar = tqdm(jobs, desc=f"benchmark {task}", unit="model", disable=not progress)
    for name, job_split in bar:
        bar.set_postfix_str(name)
        gc.collect()
        try:
            results.append(
                train_on_split(
                    settings,
                    task,
                    name,
                    dataset,
                    job_split,
                    params=resolve_params(settings, task, name),
                    track=track,
                    store=store,
                    parent_run_id=parent_run_id,
                    progress=False,
                )
            )
        except Exception as error:  # one broken model must not hide the others' figures
            label = f"{name} (leaky)" if is_leaky(job_split.protocol) else name
            failures[label] = f"{type(error).__name__}: {error}"
            logger.warning("benchmark: %s failed: %s", label, error)
    notes = [
        f"dataset {dataset.directory} (fingerprint {dataset.fingerprint}), protocol "
        f"{split.protocol}, split seed {split.seed}, {len(split.test)} test cases",
    ]
    if get_protocol(split.protocol).scores_last_position:
        notes.append("last_*: the same metric on each held-out playlist's last position only")
    if leaky_split is not None:
        notes.append(
            "(leaky): trained on the held-out targets too, as the original design did; "
            "not a fair comparison, shown only to explain the original figure"
        )
    notes += [f"{label} failed: {reason}" for label, reason in failures.items()]
    leaderboard = Leaderboard(
        title or f"Segue {task} leaderboard ({split.protocol})",
        [result.leaderboard_row() for result in results],
        headline=f"ndcg_at_{settings.evaluation.k}",
        notes=notes,
    )
    files = write_leaderboard(leaderboard, out_dir) if out_dir is not None else None
    if store is not None and parent_run_id is not None:
        with tempfile.TemporaryDirectory(prefix="segue-board-") as scratch:
            logged = files or write_leaderboard(leaderboard, scratch)
            for path in (logged.markdown, logged.csv, logged.png):
                store.log_file(parent_run_id, path, "leaderboard")
        store.finish_run(parent_run_id, failed=bool(failures) and not results)
    return BenchmarkResult(leaderboard, results, failures, files, parent_run_id)


def leak_holdout_targets_checked(split: Split) -> Split:
    """The leaky variant of a split; only the original design's random holdout has one."""
    if get_protocol(split.protocol).name != "random-holdout":
        raise TrainingError(
            "leaky training exists only to reproduce the original design's random-holdout figure"
        )
    return leak_holdout_targets(split)
