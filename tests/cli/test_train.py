"""`segue train|evaluate|benchmark|tune`: exit codes, printed results, files written."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifecycle_support import registry, settings  # noqa: F401
from segue.cli.main import app
from segue.data.dataset import Dataset
from segue.tracking.registry import CHALLENGER, Registry

SMALL = ["--set", "evaluation.holdout_per_user=3"]


@pytest.fixture
def ratings(tmp_path: Path, make_ratings: Callable[..., Dataset]) -> str:
    return str(make_ratings(tmp_path / "ratings").directory)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "ads", "--model", "ease"], "unknown task"),
        (["--task", "user-items", "--model", "deep-magic"], "unknown model"),
        (["--task", "next-song", "--model", "ease"], "does not serve"),
        (["--task", "user-items", "--model", "ease", "--protocol", "k-fold"], "unknown protocol"),
        (["--task", "user-items", "--model", "ease", "--set", "models.ease.l2=-1"], "invalid"),
    ],
)
def test_train_refuses_bad_input_with_exit_2(ratings: str, args: list[str], message: str) -> None:
    code, output = _run("train", *args, "--data", ratings, "--no-track", *SMALL)
    assert code == 2
    assert message in output


def test_train_refuses_a_missing_dataset(tmp_path: Path) -> None:
    code, output = _run(
        "train", "--task", "user-items", "--model", "ease", "--data", str(tmp_path / "none")
    )
    assert code == 2
    assert "not a Segue dataset" in output


def test_train_prints_metrics_and_saves_the_model_with_set_overrides(
    ratings: str, tmp_path: Path
) -> None:
    code, output = _run(
        "train",
        "--task",
        "user-items",
        "--model",
        "ease",
        "--data",
        ratings,
        "--set",
        "models.ease.l2=300",
        "--save-model",
        str(tmp_path / "saved"),
        "--no-track",
        *SMALL,
    )
    assert code == 0, output
    assert "ndcg_at_10" in output and "validation" in output and "test" in output
    assert "run id: (not tracked)" in output
    saved = json.loads((tmp_path / "saved" / "model.json").read_text(encoding="utf-8"))
    assert saved["config"]["l2"] == 300.0

    code, output = _run(
        "evaluate",
        "--model-dir",
        str(tmp_path / "saved"),
        "--data",
        ratings,
        "--task",
        "user-items",
        *SMALL,
    )
    assert code == 0, output
    assert "ndcg_at_10" in output


def test_train_prints_the_run_id(ratings: str, tracking_overrides: list[str]) -> None:
    sets = [arg for value in tracking_overrides for arg in ("--set", value)]
    code, output = _run(
        "train", "--task", "user-items", "--model", "most-popular", "--data", ratings, *SMALL, *sets
    )
    assert code == 0, output
    run_line = [line for line in output.splitlines() if line.startswith("run id: ")]
    assert len(run_line[0].removeprefix("run id: ")) == 32


def test_evaluate_needs_exactly_one_model_source(ratings: str) -> None:
    code, output = _run("evaluate", "--data", ratings)
    assert code == 2
    assert "exactly one of --model-dir or --run" in output


def test_leaky_is_refused_outside_random_holdout(ratings: str) -> None:
    code, output = _run(
        "train",
        "--task",
        "user-items",
        "--model",
        "ease",
        "--data",
        ratings,
        "--protocol",
        "leave-last-one-out",
        "--leaky",
        "--no-track",
    )
    assert code == 2
    assert "leaky" in output


def test_benchmark_writes_a_leaderboard(ratings: str, tmp_path: Path) -> None:
    out = tmp_path / "board"
    code, output = _run(
        "benchmark",
        "--task",
        "user-items",
        "--data",
        ratings,
        "--models",
        "most-popular,ease",
        "--out",
        str(out),
        "--no-track",
        *SMALL,
    )
    assert code == 0, output
    assert "| 1 |" in output and "most-popular" in output
    assert sorted(p.name for p in out.iterdir()) == [
        "leaderboard.csv",
        "leaderboard.md",
        "leaderboard.png",
    ]


def test_benchmark_refuses_an_unknown_model(ratings: str) -> None:
    code, output = _run(
        "benchmark", "--task", "user-items", "--data", ratings, "--models", "ease,nope"
    )
    assert code == 2
    assert "unknown model" in output


def test_tune_writes_the_best_config_that_train_layers_below_set(ratings: str) -> None:
    code, output = _run(
        "tune",
        "--task",
        "user-items",
        "--model",
        "item-knn",
        "--data",
        ratings,
        "--trials",
        "2",
        "--no-track",
        *SMALL,
    )
    assert code == 0, output
    assert "best config written to .segue/tuned/user-items/item-knn.toml" in output
    tuned = tomllib.loads(Path(".segue/tuned/user-items/item-knn.toml").read_text("utf-8"))
    tuned_params = tuned["models"]["item-knn"]

    code, output = _run(
        "train",
        "--task",
        "user-items",
        "--model",
        "item-knn",
        "--data",
        ratings,
        "--set",
        "models.item-knn.neighbours=7",
        "--save-model",
        "saved",
        "--no-track",
        *SMALL,
    )
    assert code == 0, output
    config = json.loads(Path("saved/model.json").read_text(encoding="utf-8"))["config"]
    assert config["neighbours"] == 7  # --set wins over the tuned value
    assert config["shrinkage"] == pytest.approx(tuned_params["shrinkage"])  # tuned wins over base


@pytest.mark.usefixtures("settings")  # the test's own registry store
def test_train_register_then_promote_makes_a_champion(
    ratings: str,
    registry: Registry,  # noqa: F811 (a fixture)
) -> None:
    code, output = _run("train", "--task", "user-items", "--data", ratings, "--register", *SMALL)
    assert code == 0, output
    assert "user-items / ease on random-holdout" in output  # the task's default algorithm
    assert "registered dev.segue-user-items version 1 as challenger" in output
    assert "refit on all 300 rows" in output
    assert "next: segue promote --task user-items" in output
    info = registry.get_version("dev.segue-user-items", "1")
    assert info.aliases == (CHALLENGER,) and info.algorithm == "ease"
    assert info.tags["segue.fit_on"] == "all" and info.tags["segue.fit_rows"] == "300"

    code, output = _run("promote", "--task", "user-items")
    assert code == 0, output
    assert "promoted version 1 to champion" in output
    assert registry.champion_version("user-items") == "1"

    code, output = _run("models", "list", "--task", "user-items")
    assert code == 0, output
    assert "all 300 rows" in output and "random-holdout seed 42" in output


@pytest.mark.usefixtures("settings")
def test_train_register_makes_the_same_challenger_as_the_pipeline(
    ratings: str,
    registry: Registry,  # noqa: F811 (a fixture)
) -> None:
    code, output = _run(
        "train", "--task", "user-items", "--model", "most-popular", "--data", ratings,
        "--register", *SMALL,
    )  # fmt: skip
    assert code == 0, output
    code, output = _run(
        "--set", "evaluation.holdout_per_user=3", "pipeline", "run", "--task", "user-items",
        "--data", ratings, "--model", "most-popular", "--no-promote",
    )  # fmt: skip
    assert code == 0, output
    trained, piped = (registry.get_version("dev.segue-user-items", v) for v in ("1", "2"))
    skip = {"mlflow.source.name", "mlflow.source.type", "mlflow.user"}
    assert {k: v for k, v in trained.tags.items() if k not in skip} == {
        k: v for k, v in piped.tags.items() if k not in skip
    }
    assert piped.aliases == (CHALLENGER,)


@pytest.mark.usefixtures("settings")
def test_promote_without_a_challenger_names_the_command_that_registers_one() -> None:
    code, output = _run("promote", "--task", "user-items")
    assert code != 0
    assert "segue train --register --task user-items" in output
    assert "segue pipeline run" in output


def test_train_refuses_to_register_a_leaky_model(ratings: str) -> None:
    code, output = _run(
        "train", "--task", "user-items", "--data", ratings, "--leaky", "--register", *SMALL
    )
    assert code == 2
    assert "drop --leaky" in output
