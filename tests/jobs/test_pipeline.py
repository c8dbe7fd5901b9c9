"""The retraining pipeline end to end on raw playlists: ingest -> train -> register -> promote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from segue.cli.main import app
from segue.data.dataset import Dataset
from segue.evaluation.protocols import default_protocol, history_order
from segue.jobs.pipeline import (
    STEPS,
    TAG_EVALUATED_ON,
    TAG_FIT_ON,
    TAG_FIT_ROWS,
    register_training,
    run_pipeline,
)
from segue.jobs.train import (
    TrainingError,
    chosen_epochs,
    fit_on_all_data,
    package_from_training,
    run_training,
)
from segue.models.base import create_model
from segue.models.tuned import resolve_params
from segue.settings import Settings, load_settings
from segue.tracking.package import ModelPackage
from segue.tracking.package_cache import fetch_package_dir
from segue.tracking.promotion import TAG_DECISION
from segue.tracking.registry import CHAMPION, Registry, RegistryError

NAME = "dev.segue-next-song"


def write_playlists(path: Path, n_songs: int = 12, n_playlists: int = 48) -> Path:
    """Playlists walking a cycle of songs: the next song is always the following one."""
    songs = [f"{i:02d}:00 Artist {i % 4} - Song {i} [Official MV]" for i in range(n_songs)]
    records = [
        {
            "video_id": f"v{playlist}",
            "title": f"mix {playlist}",
            "songs": [songs[(playlist + step) % n_songs] for step in range(8)],
        }
        for playlist in range(n_playlists)
    ]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def champion(registry: Registry) -> str | None:
    found = registry.version_by_alias(NAME, CHAMPION)
    return found.version if found else None


def test_the_pipeline_promotes_a_better_model_and_keeps_it_over_a_worse_one(
    settings: Settings, registry: Registry
):
    raw = write_playlists(Path("playlists.json"))
    first = run_pipeline(settings, "next-song", raw, algorithm="markov", progress=False)
    assert first.ok, first.error
    assert [step.status for step in first.steps] == ["ok"] * len(STEPS)
    assert first.version == "1" and first.champion == "1" and first.promotion.moved
    assert first.dataset_dir == settings.data.root / "pipeline" / "next-song"

    second = run_pipeline(settings, "next-song", raw, algorithm="most-popular", progress=False)
    assert second.ok, second.error
    assert second.version == "2" and not second.promotion.moved
    assert second.champion == "1"
    refused = registry.get_version(NAME, "2")
    assert refused.tags[TAG_DECISION] == "rejected"
    # Same data, same settings: the same dataset and split, so the recorded figures compare.
    assert refused.dataset_fingerprint == registry.get_version(NAME, "1").dataset_fingerprint

    # An ingested dataset directory is used as it is.
    again = run_pipeline(
        settings, "next-song", first.dataset_dir, algorithm="markov", promote=False
    )
    assert again.ok and again.steps[0].detail.startswith(str(first.dataset_dir))
    assert again.steps[-1].status == "skipped" and champion(registry) == "1"


def test_a_failing_step_stops_the_job_and_leaves_the_champion(
    settings: Settings, registry: Registry
):
    raw = write_playlists(Path("playlists.json"))
    assert run_pipeline(settings, "next-song", raw, algorithm="markov", progress=False).ok

    missing = run_pipeline(settings, "next-song", Path("nowhere.json"), algorithm="markov")
    assert not missing.ok and missing.failed_step == "ingest"
    assert "nowhere.json" in missing.error
    assert [step.status for step in missing.steps[1:]] == ["skipped"] * (len(STEPS) - 1)

    # Playlists carry no timestamps: the temporal protocol cannot split them.
    unsplittable = run_pipeline(
        settings, "next-song", raw, algorithm="markov", protocol="temporal", progress=False
    )
    assert unsplittable.failed_step == "train+evaluate"
    assert unsplittable.version is None
    assert champion(registry) == "1" == unsplittable.champion


def test_pipeline_command_prints_one_summary_and_exits_non_zero_on_failure(
    settings: Settings, registry: Registry
):
    runner = CliRunner()
    raw = write_playlists(Path("playlists.json"))
    done = runner.invoke(
        app, ["pipeline", "run", "--task", "next-song", "--data", str(raw), "--model", "markov"]
    )
    assert done.exit_code == 0, done.output
    assert "pipeline next-song / markov" in done.output
    assert "champion: version 1" in done.output

    failed = runner.invoke(app, ["pipeline", "run", "--task", "next-song", "--data", "nowhere"])
    assert failed.exit_code == 1
    assert "pipeline stopped: ingest failed" in failed.output
    assert "the champion was not touched" in failed.output

    unknown = runner.invoke(
        app, ["pipeline", "run", "--task", "next-song", "--data", str(raw), "--model", "nope"]
    )
    assert unknown.exit_code == 2 and "unknown model 'nope'" in unknown.output
    assert champion(registry) == "1"


@pytest.mark.parametrize("task", ["radio"])
def test_an_unknown_task_is_refused_before_any_step(settings: Settings, task: str):
    result = CliRunner().invoke(app, ["pipeline", "run", "--task", task, "--data", "x"])
    assert result.exit_code == 2 and f"unknown task {task!r}" in result.output


@pytest.mark.parametrize(
    ("task", "algorithm"), [("user-items", "most-popular"), ("next-song", "markov")]
)
def test_the_registered_model_was_fit_on_every_interaction_of_the_dataset(
    settings: Settings,
    registry: Registry,
    make_ratings: Callable[..., Dataset],
    make_playlists: Callable[..., Dataset],
    task: str,
    algorithm: str,
):
    settings = load_settings("dev", ["evaluation.holdout_per_user=3"])  # the fixture's store
    dataset = (make_ratings if task == "user-items" else make_playlists)(Path("data"))
    summary = run_pipeline(
        settings, task, dataset.directory, algorithm=algorithm, promote=False, progress=False
    )
    assert summary.ok, summary.error
    assert "refit on all" in summary.steps[STEPS.index("register")].detail
    info = registry.get_version(registry.registered_name(task), summary.version)
    package = ModelPackage.load(fetch_package_dir(registry, info))
    everything = dataset.sequences(history_order(dataset))
    rows = len(dataset.interactions)

    # The package and the registry say so: fit on all rows, measured on the split.
    assert package.metadata["fit_on"] == "all" and package.metadata["fit_rows"] == rows
    evaluated_on = package.metadata["evaluated_on"]
    assert evaluated_on["protocol"] == default_protocol(task) and evaluated_on["seed"] == 42
    assert evaluated_on["fit_rows"] < rows
    assert info.tags[TAG_FIT_ON] == "all" and info.tags[TAG_FIT_ROWS] == str(rows)
    assert info.tags[TAG_EVALUATED_ON] == f"{default_protocol(task)} seed 42"
    # The gate's evidence stays the split's test metrics.
    evaluated = run_training(
        settings, task, algorithm, dataset.directory, track=False, progress=False
    )
    assert info.metrics == pytest.approx(evaluated.test_metrics)

    # Its scores are those of the same model fit on the whole dataset, not on the split.
    full = create_model(algorithm, resolve_params(settings, task, algorithm), seed=42)
    full.fit(everything)
    histories = everything.sequences[:6]
    np.testing.assert_allclose(package.scorer.score(histories), full.score(histories))
    assert not np.allclose(package.scorer.score(histories), evaluated.model.score(histories))
    if task == "user-items":
        assert {key: list(value) for key, value in package.user_histories.items()} == {
            key: list(value)
            for key, value in zip(everything.sequence_ids, everything.sequences, strict=True)
        }


def test_the_refit_trains_for_the_epoch_count_early_stopping_chose():
    scorer = create_model("most-popular")
    scorer.training_history = [
        {"epoch": 1.0, "loss": 0.9, "val_ndcg_at_10": 0.10},
        {"epoch": 2.0, "loss": 0.8, "val_ndcg_at_10": 0.30},
        {"epoch": 3.0, "loss": 0.7, "val_ndcg_at_10": 0.30},  # a tie keeps the earlier weights
        {"epoch": 4.0, "loss": 0.6, "val_ndcg_at_10": 0.20},
    ]
    assert chosen_epochs(scorer) == 2
    scorer.training_history = [{"epoch": 1.0, "loss": 0.9}, {"epoch": 2.0, "loss": 0.8}]
    assert chosen_epochs(scorer) == 2  # no validation: every epoch ran
    scorer.training_history = []
    assert chosen_epochs(scorer) is None  # closed-form: no epochs


def test_a_neural_model_is_refit_without_validation_for_the_chosen_epochs(
    settings: Settings, make_ratings: Callable[..., Dataset]
):
    settings = load_settings("dev", ["evaluation.holdout_per_user=3"])
    dataset = make_ratings(Path("data"))
    result = run_training(
        settings,
        "user-items",
        "autoencoder",
        dataset.directory,
        params={"epochs": 4, "patience": 1},
        track=False,
        progress=False,
    )
    serving = fit_on_all_data(result)
    assert serving.epochs == chosen_epochs(result.model)
    assert serving.scorer.config.epochs == serving.epochs
    assert serving.rows == len(dataset.interactions)
    assert len(serving.scorer.training_history) == serving.epochs
    assert not any(key.startswith("val_") for key in serving.scorer.training_history[-1])
    package = package_from_training(result, serving)
    assert package.metadata["fit_epochs"] == serving.epochs
    assert package.metadata["config"]["epochs"] == serving.epochs


def test_a_leaky_result_is_never_registered(
    settings: Settings, registry: Registry, make_ratings: Callable[..., Dataset]
):
    settings = load_settings("dev", ["evaluation.holdout_per_user=3"])
    dataset = make_ratings(Path("data"))
    leaky = run_training(
        settings, "user-items", "most-popular", dataset.directory, leaky=True, track=False
    )
    with pytest.raises(RegistryError, match="never registered"):
        register_training(registry, leaky)
    assert registry.list_versions("user-items") == []


def test_the_pipeline_refuses_to_run_on_every_rank_of_a_torchrun_group(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(TrainingError, match="segue train --engine ray --register"):
        run_pipeline(settings, "next-song", write_playlists(tmp_path / "p.json"))
