"""The registry: new versions become challenger with their provenance, the champion loads by alias."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from lifecycle_support import free_port
from segue.cli.main import app
from segue.settings import load_settings
from segue.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    Registry,
    RegistryError,
    TrackingUnavailableError,
    open_registry,
)


def test_a_new_version_is_challenger_and_carries_its_provenance(registry: Registry, make_package):
    first = registry.publish(make_package(0.31, fingerprint="abc", protocol="temporal"))
    assert first.name == "dev.segue-next-song"
    assert first.aliases == (CHALLENGER,)
    assert first.dataset_fingerprint == "abc"
    assert first.protocol == "temporal"
    assert first.algorithm == "most-popular"
    assert first.metrics == {"ndcg_at_10": 0.31, "recall_at_10": 0.155}
    assert first.run_id

    second = registry.publish(make_package(0.4))
    versions = registry.list_versions("next-song")
    assert [v.version for v in versions] == [second.version, first.version]
    assert versions[0].aliases == (CHALLENGER,)
    assert versions[1].aliases == ()


def test_each_task_has_its_own_registered_model(registry: Registry, make_package):
    registry.publish(make_package(task="user-items"))
    assert registry.list_versions("next-song") == []
    assert [v.name for v in registry.list_versions("user-items")] == ["dev.segue-user-items"]


def test_an_unknown_task_is_refused_by_name(registry: Registry, make_package):
    with pytest.raises(RegistryError, match="unknown task 'radio'"):
        registry.list_versions("radio")
    with pytest.raises(RegistryError, match="unknown task 'radio'"):
        registry.publish(make_package(task="radio"))


def test_an_unreachable_tracking_server_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    uri = f"http://127.0.0.1:{free_port()}"
    settings = load_settings("dev", [f"tracking.tracking_uri={uri!r}"])
    with pytest.raises(TrackingUnavailableError, match=f"tracking server {uri} is unreachable"):
        open_registry(settings).list_versions("next-song")

    # The CLI itself turns MLflow's minutes of retries into one short attempt.
    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(name, "unset by this test")  # so that teardown restores the original
        monkeypatch.delenv(name)
    result = CliRunner().invoke(
        app, ["--set", f"tracking.tracking_uri={uri!r}", "models", "list", "--task", "next-song"]
    )
    assert result.exit_code == 1
    assert f"tracking server {uri} is unreachable" in result.output
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == str(
        settings.tracking.request_timeout_seconds
    )


def test_models_list_shows_versions_aliases_and_metrics(registry: Registry, make_package):
    runner = CliRunner()
    empty = runner.invoke(app, ["models", "list", "--task", "next-song"])
    assert empty.exit_code == 0, empty.output
    assert "no registered versions yet" in empty.output

    first = registry.publish(make_package(0.3125))
    registry.set_alias(first.name, CHAMPION, first.version)
    registry.publish(make_package(0.25))
    listed = runner.invoke(app, ["models", "list", "--task", "next-song"])
    assert listed.exit_code == 0, listed.output
    assert "registered versions" in listed.output
    assert "champion" in listed.output and "challenger" in listed.output
    assert "0.3125" in listed.output and "0.2500" in listed.output

    unknown = runner.invoke(app, ["models", "list", "--task", "radio"])
    assert unknown.exit_code == 2
    assert "unknown task 'radio'" in unknown.output


def test_a_leaky_package_is_never_registered(registry: Registry, make_package):
    with pytest.raises(RegistryError, match="random-holdout-leaky package is never registered"):
        registry.publish(make_package(protocol="random-holdout-leaky"))
    assert registry.list_versions("next-song") == []


def test_the_champion_probe_follows_the_alias(registry: Registry, make_package):
    assert registry.champion_version("next-song") is None
    first = registry.publish(make_package(0.3))
    assert registry.champion_version("next-song") is None
    registry.set_alias(first.name, CHAMPION, first.version)
    assert registry.champion_version("next-song") == first.version
