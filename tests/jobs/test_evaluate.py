"""Re-scoring a saved model: a model directory, a run's artifacts, a package logged into a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from segue.data.dataset import Dataset
from segue.jobs.evaluate import rescore_saved_model
from segue.jobs.train import package_from_training, run_training
from segue.settings import Settings, load_settings
from segue.tracking.pyfunc import log_package
from segue.tracking.registry import open_registry
from segue.tracking.runs import open_tracking

SMALL = ["evaluation.holdout_per_user=3", "evaluation.cutoffs=[5, 10]"]


def _settings(*extra: str) -> Settings:
    return load_settings(overrides=[*SMALL, *extra])


def test_a_saved_model_rescores_to_the_same_test_metrics(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = _settings(*tracking_overrides)
    dataset = make_ratings(tmp_path / "ratings")
    trained = run_training(settings, "user-items", "ease", dataset.directory, progress=False)
    model_dir = trained.model.save(tmp_path / "ease")
    again = rescore_saved_model(settings, dataset.directory, model_dir=model_dir, task="user-items")
    assert again.test_metrics == pytest.approx(trained.test_metrics)
    # the same model found among a run's artifacts
    store = open_tracking(settings)
    store.log_artifacts(trained.run_id, model_dir, "scorer")
    by_run = rescore_saved_model(settings, dataset.directory, run_id=trained.run_id)
    assert by_run.protocol == "random-holdout"
    assert by_run.test_metrics == pytest.approx(trained.test_metrics)


def test_evaluate_finds_the_package_logged_into_the_training_run(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = _settings(*tracking_overrides)
    dataset = make_ratings(tmp_path / "ratings")
    trained = run_training(settings, "user-items", "item-knn", dataset.directory, progress=False)
    open_registry(settings)  # points MLflow's fluent logging at the store
    log_package(package_from_training(trained), run_id=trained.run_id)
    again = rescore_saved_model(settings, dataset.directory, run_id=trained.run_id)
    assert again.task == "user-items"
    assert again.unknown_items == 0
    assert again.test_metrics == pytest.approx(trained.test_metrics)
