"""Benchmarks: several algorithms fitted and measured on one split, written as a leaderboard."""

from __future__ import annotations

import gc
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from segue.data.interactions import Split
from segue.data.splits import leak_holdout_targets
from segue.evaluation.protocols import get_protocol, is_leaky
from segue.evaluation.report import Leaderboard, LeaderboardFiles, write_leaderboard
from segue.jobs.train import (
    TrainingError,
    TrainingResult,
    check_task_and_algorithm,
    load_dataset,
    prepare_split,
    run_tags,
    train_on_split,
)
from segue.models.tuned import resolve_params
from segue.settings import Settings
from segue.tracking.runs import open_tracking

logger = logging.getLogger(__name__)


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
    algorithms: list[str],
    *,
    protocol: str | None = None,
    leaky_algorithms: list[str] | None = None,
    out_dir: str | Path | None = None,
    track: bool = True,
    title: str | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Fit every model on the same split; write and log a leaderboard.

    ``leaky_algorithms`` are fitted a second time on the leaky variant of the split
    (random-holdout only) and appear as ``<algorithm> (leaky)``. A model that fails is reported
    in ``failures`` and the others still run.
    """
    leaky_algorithms = list(leaky_algorithms or [])
    for name in [*algorithms, *leaky_algorithms]:
        check_task_and_algorithm(task, name)
    dataset = load_dataset(dataset_dir)
    split = prepare_split(settings, task, dataset, protocol)
    leaky_split = leak_holdout_targets_checked(split) if leaky_algorithms else None
    store = open_tracking(settings) if track else None
    parent_run_id = None
    if store is not None:
        parent_run_id = store.start_run(
            f"benchmark {task}",
            {
                **run_tags(task, "benchmark", dataset, split),
                "segue.benchmark": ",".join(algorithms),
            },
        )
    jobs = [(name, split) for name in algorithms]
    jobs += [(name, leaky_split) for name in leaky_algorithms if leaky_split is not None]
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
