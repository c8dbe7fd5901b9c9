"""Re-scoring a saved model on a dataset: a model directory, a package, or an MLflow run.

``rescore_saved_model`` is what ``segue evaluate`` runs and what the promotion job uses to measure
a challenger and a champion on the same split.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segue.data.dataset import Dataset
from segue.data.interactions import Holdout
from segue.evaluation.protocols import build_split, default_protocol, get_protocol
from segue.jobs.train import TrainingError, evaluation_cutoffs, load_dataset
from segue.models.base import Scorer, load_model
from segue.settings import Settings
from segue.tracking.package import locate_saved_scorer, read_catalogue, read_package_metadata
from segue.tracking.runs import open_tracking


@dataclass
class RescoreResult:
    """Metrics of a saved model on a dataset's validation and test cases."""

    model: Scorer
    task: str | None
    protocol: str
    dataset: Dataset
    validation_metrics: dict[str, float]
    test_metrics: dict[str, float]
    n_test_cases: int
    unknown_items: int


def rescore_saved_model(
    settings: Settings,
    dataset_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    run_id: str | None = None,
    task: str | None = None,
    protocol: str | None = None,
) -> RescoreResult:
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
        scorer_dir, package_dir = locate_saved_scorer(directory)
        scorer = load_model(scorer_dir)
        package = read_package_metadata(package_dir) if package_dir is not None else {}
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
    return RescoreResult(
        scorer,
        task,
        evaluator.name,
        dataset,
        evaluator.evaluate(scorer, validation, cutoffs, item_counts=counts),
        evaluator.evaluate(scorer, test, cutoffs, item_counts=counts, progress=True),
        len(test),
        unknown,
    )


def _item_mapping(
    dataset: Dataset, scorer: Scorer, package_dir: Path | None
) -> tuple[np.ndarray | None, int]:
    """Dataset item index -> model item index (-1 unknown), or None when they are the same."""
    catalogue = read_catalogue(package_dir) if package_dir is not None else None
    if catalogue is None:
        if scorer.n_items != dataset.n_items:
            raise TrainingError(
                f"the model knows {scorer.n_items} items but the dataset has {dataset.n_items}; "
                "give a model package (with items.parquet) to match items by key"
            )
        return None, 0
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
