"""The champion/challenger gate and rollback, on a real embedded MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_support import chain_dataset
from typer.testing import CliRunner

from segue.cli.main import app
from segue.settings import Settings
from segue.tracking.packaging import package_from_training
from segue.tracking.promotion import (
    TAG_CHALLENGER_VALUE,
    TAG_CHAMPION_VALUE,
    TAG_CHAMPION_VERSION,
    TAG_DECISION,
    PromotionError,
    decide,
    promote,
    rollback,
)
from segue.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    TAG_PREVIOUS_CHAMPION,
    get_version,
    list_versions,
    publish_package,
    version_by_alias,
)

NAME = "dev.segue-next-song"


def champion_version(settings: Settings) -> str | None:
    champion = version_by_alias(settings, NAME, CHAMPION)
    return champion.version if champion else None


def test_decide_knows_the_direction_of_the_metric():
    assert decide(0.30, 0.20, "ndcg_at_10", 0.0)[0]
    assert not decide(0.20, 0.30, "ndcg_at_10", 0.0)[0]
    # Lower is better: a lower popularity percentile (or loss) wins.
    assert decide(0.20, 0.30, "popularity_percentile_at_10", 0.0)[0]
    assert not decide(0.30, 0.20, "loss", 0.0)[0]
    assert decide(0.30, 0.20, "last_ndcg_at_10", 0.0)[0]


def test_decide_keeps_the_champion_on_a_tie_and_below_the_minimum_gain():
    assert decide(0.3, 0.3, "ndcg_at_10", 0.0) == (False, "tie: the champion stays")
    assert not decide(0.304, 0.3, "ndcg_at_10", 0.005)[0]
    assert decide(0.306, 0.3, "ndcg_at_10", 0.005)[0]
    assert decide(0.1, None, "ndcg_at_10", 0.005) == (True, "no champion yet")
    with pytest.raises(PromotionError, match="unknown metric 'accuracy'"):
        decide(0.3, 0.2, "accuracy", 0.0)


def test_train_register_promote_refuse_rollback(settings: Settings, make_package):
    first = publish_package(settings, make_package(0.30))
    result = promote(settings, "next-song")
    assert result.moved and result.reason == "no champion yet"
    assert champion_version(settings) == first.version
    promoted = get_version(settings, NAME, first.version)
    assert promoted.tags[TAG_DECISION] == "promoted"
    assert promoted.previous_champion == ""
    assert CHALLENGER not in promoted.aliases

    better = publish_package(settings, make_package(0.40))
    result = promote(settings, "next-song")
    assert result.moved and result.champion_value == 0.30 and result.challenger_value == 0.40
    assert champion_version(settings) == better.version
    assert get_version(settings, NAME, better.version).tags[TAG_PREVIOUS_CHAMPION] == first.version

    worse = publish_package(settings, make_package(0.35))
    result = promote(settings, "next-song")
    assert not result.promoted and not result.moved
    assert champion_version(settings) == better.version
    refused = get_version(settings, NAME, worse.version)
    assert refused.tags[TAG_DECISION] == "rejected"
    assert float(refused.tags[TAG_CHALLENGER_VALUE]) == 0.35
    assert float(refused.tags[TAG_CHAMPION_VALUE]) == 0.40
    assert refused.tags[TAG_CHAMPION_VERSION] == better.version
    assert CHALLENGER in refused.aliases

    back = rollback(settings, "next-song")
    assert (back.from_version, back.to_version) == (better.version, first.version)
    assert champion_version(settings) == first.version
    with pytest.raises(PromotionError, match="no previous champion"):
        rollback(settings, "next-song")
    assert champion_version(settings) == first.version


def test_a_tie_keeps_the_champion_and_min_gain_is_respected(settings: Settings, make_package):
    first = publish_package(settings, make_package(0.30))
    promote(settings, "next-song")
    publish_package(settings, make_package(0.30))
    assert not promote(settings, "next-song").moved
    publish_package(settings, make_package(0.304))
    assert not promote(settings, "next-song", min_gain=0.005).moved
    assert champion_version(settings) == first.version
    gainer = publish_package(settings, make_package(0.306))
    assert promote(settings, "next-song", min_gain=0.005).moved
    assert champion_version(settings) == gainer.version


def test_a_lower_is_better_metric_promotes_the_lower_value(settings: Settings, make_package):
    publish_package(settings, make_package(metrics={"popularity_percentile_at_10": 0.8}))
    promote(settings, "next-song", metric="popularity_percentile_at_10")
    lower = publish_package(settings, make_package(metrics={"popularity_percentile_at_10": 0.6}))
    assert promote(settings, "next-song", metric="popularity_percentile_at_10").moved
    assert champion_version(settings) == lower.version


def test_dry_run_moves_nothing_and_writes_nothing(settings: Settings, make_package):
    first = publish_package(settings, make_package(0.30))
    result = promote(settings, "next-song", dry_run=True)
    assert result.promoted and result.dry_run and not result.moved
    assert champion_version(settings) is None
    assert TAG_DECISION not in get_version(settings, NAME, first.version).tags


def test_a_metric_a_version_lacks_is_named_and_moves_nothing(settings: Settings, make_package):
    first = publish_package(settings, make_package(0.30))
    promote(settings, "next-song")
    second = publish_package(settings, make_package(metrics={"recall_at_10": 0.9}))
    with pytest.raises(PromotionError, match=rf"version {second.version} .*no metric 'ndcg_at_10'"):
        promote(settings, "next-song")
    with pytest.raises(PromotionError, match="unknown metric 'accuracy'"):
        promote(settings, "next-song", metric="accuracy")
    assert champion_version(settings) == first.version
    assert version_by_alias(settings, NAME, CHALLENGER).version == second.version


def test_no_challenger_and_no_champion_are_clear_errors(settings: Settings):
    with pytest.raises(PromotionError, match="has no challenger"):
        promote(settings, "next-song")
    with pytest.raises(PromotionError, match="has no champion"):
        rollback(settings, "next-song")


def test_different_evaluations_are_re_evaluated_on_the_current_split(settings: Settings):
    from segue.training_job import run_training

    dataset = chain_dataset(Path("data"))
    packages = {}
    for model in ("most-popular", "markov"):
        trained = run_training(settings, "next-song", model, dataset.directory, track=False)
        packages[model] = package_from_training(trained)
    # The champion was measured on older data: its figures are not comparable.
    packages["most-popular"].metadata["dataset_fingerprint"] = "older-data"
    packages["most-popular"].metadata["metrics"]["ndcg_at_10"] = 0.99
    champion = publish_package(settings, packages["most-popular"])
    promote(settings, "next-song")
    challenger = publish_package(settings, packages["markov"])

    with pytest.raises(PromotionError, match="evaluated differently; pass --data"):
        promote(settings, "next-song")
    assert champion_version(settings) == champion.version

    result = promote(settings, "next-song", data_dir=dataset.directory)
    assert "re-evaluated" in result.evaluated_on and dataset.fingerprint in result.evaluated_on
    assert result.champion_value < 0.99
    assert result.challenger_value == pytest.approx(packages["markov"].metrics["ndcg_at_10"])
    assert result.moved and champion_version(settings) == challenger.version


def test_promote_command_prints_the_comparison(settings: Settings, make_package):
    runner = CliRunner()
    publish_package(settings, make_package(0.30))
    first = runner.invoke(app, ["promote", "--task", "next-song"])
    assert first.exit_code == 0, first.output
    assert "promoted version 1 to champion (no champion yet)" in first.output

    publish_package(settings, make_package(0.25))
    dry = runner.invoke(app, ["promote", "--task", "next-song", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "champion v1" in dry.output and "challenger v2" in dry.output
    assert "-0.0500" in dry.output and "dry run: would keep the champion" in dry.output

    refused = runner.invoke(app, ["promote", "--task", "next-song", "--min-gain", "0.01"])
    assert refused.exit_code == 0, refused.output
    assert "version 2 not promoted" in refused.output

    bad_metric = runner.invoke(app, ["promote", "--task", "next-song", "--metric", "accuracy"])
    assert bad_metric.exit_code == 2 and "unknown metric 'accuracy'" in bad_metric.output
    no_previous = runner.invoke(app, ["rollback", "--task", "next-song"])
    assert no_previous.exit_code == 1 and "no previous champion" in no_previous.output
    assert champion_version(settings) == "1"


def promote_process(version: str, cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "segue.cli", "promote", "--task", "next-song"]
    return subprocess.Popen(
        [*command, "--version", version],
        cwd=cwd,
        env={**os.environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("better_first", [True, False])
def test_two_concurrent_promotions_leave_the_better_model_champion(
    settings: Settings, make_package, better_first: bool
):
    baseline = publish_package(settings, make_package(0.30))
    promote(settings, "next-song")
    good = publish_package(settings, make_package(0.40))
    best = publish_package(settings, make_package(0.50))
    order = [best, good] if better_first else [good, best]
    processes = [promote_process(version.version, Path.cwd()) for version in order]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert champion_version(settings) == best.version, outputs
    versions = {v.version: v for v in list_versions(settings, "next-song")}
    assert versions[best.version].previous_champion in (baseline.version, good.version)
