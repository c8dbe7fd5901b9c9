"""Benchmarks: every algorithm fitted on one split, a leaderboard written and logged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segue.data.dataset import Dataset
from segue.jobs.benchmark import run_benchmark
from segue.settings import Settings, load_settings
from segue.tracking.runs import open_tracking

SMALL = ["evaluation.holdout_per_user=3", "evaluation.cutoffs=[5, 10]"]


def _settings(*extra: str) -> Settings:
    return load_settings(overrides=[*SMALL, *extra])


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
        leaky_algorithms=["most-popular"],
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
