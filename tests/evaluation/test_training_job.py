"""The training job: a real MLflow run in a tmp sqlite store, parameter layers, re-scoring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from segue.data.dataset import Dataset
from segue.evaluation.tuning import tuned_config_path
from segue.settings import Settings, load_settings
from segue.tracking.runs import open_tracking
from segue.training_job import (
    TrainingError,
    resolve_params,
    run_benchmark,
    run_evaluation,
    run_training,
)

SMALL = ["evaluation.holdout_per_user=3", "evaluation.cutoffs=[5, 10]"]


def _settings(*extra: str) -> Settings:
    return load_settings(overrides=[*SMALL, *extra])


def test_a_neural_run_records_params_epochs_metrics_and_artifacts(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = _settings(*tracking_overrides)
    dataset = make_ratings(tmp_path / "ratings")
    result = run_training(
        settings,
        "user-items",
        "autoencoder",
        dataset.directory,
        params={"epochs": 3, "patience": 5, "hidden_size": 8, "batch_size": 8},
        progress=False,
    )
    assert result.run_id
    assert result.protocol == "random-holdout" and not result.leaky
    assert len(result.model.training_history) == 3
    store = open_tracking(settings)
    run = store.client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "autoencoder"
    assert params["hidden_size"] == "8"
    assert params["protocol"] == "random-holdout"
    assert params["split_seed"] == "42"
    assert params["dataset_fingerprint"] == dataset.fingerprint
    tags = run.data.tags
    assert tags["dataset_fingerprint"] == dataset.fingerprint
    assert tags["split_protocol"] == "random-holdout"
    assert tags["leaky"] == "false"
    metrics = run.data.metrics
    assert metrics["ndcg_at_10"] == pytest.approx(result.test_metrics["ndcg_at_10"])
    assert metrics["validation_ndcg_at_10"] == pytest.approx(
        result.validation_metrics["ndcg_at_10"]
    )
    assert "fit_seconds" in metrics and "peak_memory_mb" in metrics
    loss_steps = [m.step for m in store.client.get_metric_history(result.run_id, "loss")]
    assert loss_steps == [1, 2, 3]
    val_steps = [m.step for m in store.client.get_metric_history(result.run_id, "val_ndcg_at_10")]
    assert val_steps == [1, 2, 3]
    artifacts = {entry.path for entry in store.client.list_artifacts(result.run_id)}
    assert {"config.json", "learning_curve.png"} <= artifacts


def test_a_closed_form_run_has_metrics_but_no_learning_curve(
    tmp_path: Path, make_playlists: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = _settings(*tracking_overrides)
    dataset = make_playlists(tmp_path / "playlists")
    result = run_training(settings, "next-song", "most-popular", dataset.directory, progress=False)
    store = open_tracking(settings)
    run = store.client.get_run(result.run_id)
    assert run.data.metrics["last_ndcg_at_10"] == pytest.approx(
        result.test_metrics["last_ndcg_at_10"]
    )
    assert {e.path for e in store.client.list_artifacts(result.run_id)} == {"config.json"}


def test_a_leaky_run_is_labelled(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = _settings(*tracking_overrides)
    dataset = make_ratings(tmp_path / "ratings")
    result = run_training(
        settings, "user-items", "most-popular", dataset.directory, leaky=True, progress=False
    )
    run = open_tracking(settings).client.get_run(result.run_id)
    assert result.leaky
    assert run.data.params["protocol"] == "random-holdout-leaky"
    assert run.data.tags["leaky"] == "true"
    assert "leaky" in run.info.run_name


def test_parameter_layers_settings_then_tuned_then_explicit(tmp_path: Path) -> None:
    settings = _settings(f"evaluation.tuned_dir={tmp_path / 'tuned'}")
    base = settings.model_params("ease")
    assert resolve_params(settings, "user-items", "ease") == base
    path = tuned_config_path(settings, "user-items", "ease")
    path.parent.mkdir(parents=True)
    path.write_text('[models."ease"]\nl2 = 42.0\n', encoding="utf-8")
    assert resolve_params(settings, "user-items", "ease") == {"l2": 42.0}
    assert resolve_params(settings, "user-items", "ease", {"l2": 7.0}) == {"l2": 7.0}
    assert resolve_params(settings, "next-song", "ease") == base  # tuned configs are per task


def test_unknown_task_and_wrong_task_for_model_are_refused(
    tmp_path: Path, make_ratings: Callable[..., Dataset]
) -> None:
    dataset = make_ratings(tmp_path / "ratings")
    with pytest.raises(TrainingError, match="unknown task"):
        run_training(_settings(), "ads", "ease", dataset.directory, track=False)
    with pytest.raises(TrainingError, match="does not serve"):
        run_training(_settings(), "next-song", "ease", dataset.directory, track=False)


def test_a_saved_model_rescores_to_the_same_test_metrics(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = _settings(*tracking_overrides)
    dataset = make_ratings(tmp_path / "ratings")
    trained = run_training(settings, "user-items", "ease", dataset.directory, progress=False)
    model_dir = trained.model.save(tmp_path / "ease")
    again = run_evaluation(settings, dataset.directory, model_dir=model_dir, task="user-items")
    assert again.test_metrics == pytest.approx(trained.test_metrics)
    # the same model found among a run's artifacts
    store = open_tracking(settings)
    store.log_artifacts(trained.run_id, model_dir, "scorer")
    by_run = run_evaluation(settings, dataset.directory, run_id=trained.run_id)
    assert by_run.protocol == "random-holdout"
    assert by_run.test_metrics == pytest.approx(trained.test_metrics)


def test_benchmark_fits_every_model_on_one_split(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = _settings(*tracking_overrides)
    dataset = make_ratings(tmp_path / "ratings")
    result = run_benchmark(
        settings,
        "user-items",
        dataset.directory,
        ["most-popular", "ease"],
        leaky_models=["most-popular"],
        out_dir=tmp_path / "board",
        progress=False,
    )
    assert not result.failures
    labels = result.leaderboard.to_frame()["model"].tolist()
    assert sorted(labels) == ["ease", "most-popular", "most-popular (leaky)"]
    assert result.files is not None and result.files.markdown.exists()
    store = open_tracking(settings)
    logged = {e.path for e in store.client.list_artifacts(result.parent_run_id, "leaderboard")}
    assert logged == {
        "leaderboard/leaderboard.md",
        "leaderboard/leaderboard.csv",
        "leaderboard/leaderboard.png",
    }
    children = store.client.search_runs(
        [store.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    )
    assert len(children) == 3


def test_evaluate_finds_the_package_logged_into_the_training_run(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    packaging = pytest.importorskip("segue.tracking.packaging")
    registry = pytest.importorskip("segue.tracking.registry")
    settings = _settings(*tracking_overrides)
    dataset = make_ratings(tmp_path / "ratings")
    trained = run_training(settings, "user-items", "item-knn", dataset.directory, progress=False)
    registry.open_client(settings)
    packaging.log_package(packaging.package_from_training(trained), run_id=trained.run_id)
    again = run_evaluation(settings, dataset.directory, run_id=trained.run_id)
    assert again.task == "user-items"
    assert again.unknown_items == 0
    assert again.test_metrics == pytest.approx(trained.test_metrics)


def test_peak_memory_counts_numpy_allocations() -> None:
    import numpy as np

    from segue.training_job import PeakMemory

    with PeakMemory() as meter:
        block = np.ones((2000, 8000))  # 122 MiB, written so every page is resident
    assert block.sum() > 0
    assert 100 < meter.peak_mb < 1000
