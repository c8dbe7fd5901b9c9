"""The promotion job: the champion/challenger gate and rollback, on a real embedded MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifecycle_support import chain_dataset
from segue.cli.main import app
from segue.jobs.promote import promote, rollback
from segue.jobs.train import package_from_training, run_training
from segue.settings import Settings
from segue.tracking.promotion import (
    TAG_CHALLENGER_VALUE,
    TAG_CHAMPION_VALUE,
    TAG_CHAMPION_VERSION,
    TAG_DECISION,
    PromotionError,
)
from segue.tracking.registry import CHALLENGER, CHAMPION, TAG_PREVIOUS_CHAMPION, Registry

NAME = "dev.segue-next-song"


def champion_version(registry: Registry) -> str | None:
    champion = registry.version_by_alias(NAME, CHAMPION)
    return champion.version if champion else None


def test_train_register_promote_refuse_rollback(
    settings: Settings, registry: Registry, make_package
):
    first = registry.publish(make_package(0.30))
    result = promote(settings, "next-song")
    assert result.moved and result.reason == "no champion yet"
    assert champion_version(registry) == first.version
    promoted = registry.get_version(NAME, first.version)
    assert promoted.tags[TAG_DECISION] == "promoted"
    assert promoted.previous_champion == ""
    assert CHALLENGER not in promoted.aliases

    better = registry.publish(make_package(0.40))
    result = promote(settings, "next-song")
    assert result.moved and result.champion_value == 0.30 and result.challenger_value == 0.40
    assert champion_version(registry) == better.version
    assert registry.get_version(NAME, better.version).tags[TAG_PREVIOUS_CHAMPION] == first.version

    worse = registry.publish(make_package(0.35))
    result = promote(settings, "next-song")
    assert not result.promoted and not result.moved
    assert champion_version(registry) == better.version
    refused = registry.get_version(NAME, worse.version)
    assert refused.tags[TAG_DECISION] == "rejected"
    assert float(refused.tags[TAG_CHALLENGER_VALUE]) == 0.35
    assert float(refused.tags[TAG_CHAMPION_VALUE]) == 0.40
    assert refused.tags[TAG_CHAMPION_VERSION] == better.version
    assert CHALLENGER in refused.aliases

    back = rollback(settings, "next-song")
    assert (back.from_version, back.to_version) == (better.version, first.version)
    assert champion_version(registry) == first.version
    with pytest.raises(PromotionError, match="no previous champion"):
        rollback(settings, "next-song")
    assert champion_version(registry) == first.version


def test_a_tie_keeps_the_champion_and_min_gain_is_respected(
    settings: Settings, registry: Registry, make_package
):
    first = registry.publish(make_package(0.30))
    promote(settings, "next-song")
    registry.publish(make_package(0.30))
    assert not promote(settings, "next-song").moved
    registry.publish(make_package(0.304))
    assert not promote(settings, "next-song", min_gain=0.005).moved
    assert champion_version(registry) == first.version
    gainer = registry.publish(make_package(0.306))
    assert promote(settings, "next-song", min_gain=0.005).moved
    assert champion_version(registry) == gainer.version


def test_a_lower_is_better_metric_promotes_the_lower_value(
    settings: Settings, registry: Registry, make_package
):
    registry.publish(make_package(metrics={"popularity_percentile_at_10": 0.8}))
    promote(settings, "next-song", metric="popularity_percentile_at_10")
    lower = registry.publish(make_package(metrics={"popularity_percentile_at_10": 0.6}))
    assert promote(settings, "next-song", metric="popularity_percentile_at_10").moved
    assert champion_version(registry) == lower.version


def test_dry_run_moves_nothing_and_writes_nothing(
    settings: Settings, registry: Registry, make_package
):
    first = registry.publish(make_package(0.30))
    result = promote(settings, "next-song", dry_run=True)
    assert result.promoted and result.dry_run and not result.moved
    assert champion_version(registry) is None
    assert TAG_DECISION not in registry.get_version(NAME, first.version).tags


def test_a_metric_a_version_lacks_is_named_and_moves_nothing(
    settings: Settings, registry: Registry, make_package
):
    first = registry.publish(make_package(0.30))
    promote(settings, "next-song")
    second = registry.publish(make_package(metrics={"recall_at_10": 0.9}))
    with pytest.raises(PromotionError, match=rf"version {second.version} .*no metric 'ndcg_at_10'"):
        promote(settings, "next-song")
    with pytest.raises(PromotionError, match="unknown metric 'accuracy'"):
        promote(settings, "next-song", metric="accuracy")
    assert champion_version(registry) == first.version
    assert registry.version_by_alias(NAME, CHALLENGER).version == second.version


def test_no_challenger_and_no_champion_are_clear_errors(settings: Settings, registry: Registry):
    with pytest.raises(PromotionError, match="has no challenger"):
        promote(settings, "next-song")
    with pytest.raises(PromotionError, match="has no champion"):
        rollback(settings, "next-song")


def test_different_evaluations_are_re_evaluated_on_the_current_split(
    settings: Settings, registry: Registry
):
    dataset = chain_dataset(Path("data"))
    packages = {}
    for model in ("most-popular", "markov"):
        trained = run_training(settings, "next-song", model, dataset.directory, track=False)
        packages[model] = package_from_training(trained)
    # The champion was measured on older data: its figures are not comparable.
    packages["most-popular"].metadata["dataset_fingerprint"] = "older-data"
    packages["most-popular"].metadata["metrics"]["ndcg_at_10"] = 0.99
    champion = registry.publish(packages["most-popular"])
    promote(settings, "next-song")
    challenger = registry.publish(packages["markov"])

    with pytest.raises(PromotionError, match="evaluated differently; pass --data"):
        promote(settings, "next-song")
    assert champion_version(registry) == champion.version

    result = promote(settings, "next-song", data_dir=dataset.directory)
    assert "re-evaluated" in result.evaluated_on and dataset.fingerprint in result.evaluated_on
    assert result.champion_value < 0.99
    assert result.challenger_value == pytest.approx(packages["markov"].metrics["ndcg_at_10"])
    assert result.moved and champion_version(registry) == challenger.version


def test_a_challenger_evaluated_on_the_data_keeps_its_registered_metrics(
    settings: Settings, registry: Registry
):
    """A registered version was refit on all of its dataset: re-scoring it on that dataset's test
    split would count items it has seen, so only the champion is re-scored."""
    dataset = chain_dataset(Path("data"))
    packages = {
        model: package_from_training(
            run_training(settings, "next-song", model, dataset.directory, track=False)
        )
        for model in ("most-popular", "markov")
    }
    packages["most-popular"].metadata["dataset_fingerprint"] = "older-data"
    registry.publish(packages["most-popular"])
    promote(settings, "next-song")
    packages["markov"].metadata["metrics"]["ndcg_at_10"] = 0.4321
    registry.publish(packages["markov"])

    result = promote(settings, "next-song", data_dir=dataset.directory, dry_run=True)
    assert result.challenger_value == pytest.approx(0.4321)
    assert result.champion_value == pytest.approx(
        packages["most-popular"].metrics["ndcg_at_10"], rel=1e-6
    )


def test_promote_command_prints_the_comparison(
    settings: Settings, registry: Registry, make_package
):
    runner = CliRunner()
    registry.publish(make_package(0.30))
    first = runner.invoke(app, ["promote", "--task", "next-song"])
    assert first.exit_code == 0, first.output
    assert "promoted version 1 to champion (no champion yet)" in first.output

    registry.publish(make_package(0.25))
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
    assert champion_version(registry) == "1"


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
    settings: Settings, registry: Registry, make_package, better_first: bool
):
    baseline = registry.publish(make_package(0.30))
    promote(settings, "next-song")
    good = registry.publish(make_package(0.40))
    best = registry.publish(make_package(0.50))
    order = [best, good] if better_first else [good, best]
    processes = [promote_process(version.version, Path.cwd()) for version in order]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert champion_version(registry) == best.version, outputs
    versions = {v.version: v for v in registry.list_versions("next-song")}
    assert versions[best.version].previous_champion in (baseline.version, good.version)
