"""The training job: a real MLflow run in a tmp sqlite store, leaky labels, refused input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from segue.data.dataset import Dataset
from segue.jobs.train import TrainingError, run_training
from segue.settings import Settings, load_settings
from segue.tracking.runs import open_tracking

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


def test_unknown_task_and_wrong_task_for_model_are_refused(
    tmp_path: Path, make_ratings: Callable[..., Dataset]
) -> None:
    dataset = make_ratings(tmp_path / "ratings")
    with pytest.raises(TrainingError, match="unknown task"):
        run_training(_settings(), "ads", "ease", dataset.directory, track=False)
    with pytest.raises(TrainingError, match="does not serve"):
        run_training(_settings(), "next-song", "ease", dataset.directory, track=False)
