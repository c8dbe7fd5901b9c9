"""The registry: new versions become challenger with their provenance, the champion loads by alias."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from lifecycle_support import free_port
from typer.testing import CliRunner

from segue.cli.main import app
from segue.settings import Settings, load_settings
from segue.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    RegistryError,
    TrackingUnavailableError,
    champion_version,
    list_versions,
    load_champion,
    load_version,
    publish_package,
    resolve_champion,
    set_alias,
)


def artifact_dir(version_source: str) -> Path:
    """The local artifact folder of a logged model on the embedded store."""
    model_id = version_source.removeprefix("models:/")
    return Path(".segue/artifacts/models") / model_id / "artifacts"


def test_a_new_version_is_challenger_and_carries_its_provenance(settings: Settings, make_package):
    first = publish_package(settings, make_package(0.31, fingerprint="abc", protocol="temporal"))
    assert first.name == "dev.segue-next-song"
    assert first.aliases == (CHALLENGER,)
    assert first.dataset_fingerprint == "abc"
    assert first.protocol == "temporal"
    assert first.model == "most-popular"
    assert first.metrics == {"ndcg_at_10": 0.31, "recall_at_10": 0.155}
    assert first.run_id

    second = publish_package(settings, make_package(0.4))
    versions = list_versions(settings, "next-song")
    assert [v.version for v in versions] == [second.version, first.version]
    assert versions[0].aliases == (CHALLENGER,)
    assert versions[1].aliases == ()


def test_each_task_has_its_own_registered_model(settings: Settings, make_package):
    publish_package(settings, make_package(task="user-items"))
    assert list_versions(settings, "next-song") == []
    assert [v.name for v in list_versions(settings, "user-items")] == ["dev.segue-user-items"]


def test_the_champion_is_loaded_by_alias_and_follows_it(settings: Settings, make_package):
    with pytest.raises(RegistryError, match="has no champion yet"):
        resolve_champion(settings, "next-song")
    first = publish_package(settings, make_package(0.3))
    second = publish_package(settings, make_package(0.6))
    set_alias(settings, first.name, CHAMPION, first.version)

    info, package = load_champion(settings, "next-song")
    assert info.version == first.version
    assert package.metrics["ndcg_at_10"] == 0.3
    assert package.items["artist"].tolist()[:2] == ["Artist 0", "Artist 1"]
    expected = make_package().scorer.score([[0, 1]])
    np.testing.assert_allclose(package.scorer.score([[0, 1]]), expected)

    set_alias(settings, first.name, CHAMPION, second.version)
    info, package = load_champion(settings, "next-song")
    assert info.version == second.version
    assert package.metrics["ndcg_at_10"] == 0.6


def test_a_downloaded_version_is_served_from_the_cache(settings: Settings, make_package):
    version = publish_package(settings, make_package(0.3))
    load_version(settings, "next-song", version.version)
    # The store loses the files; the cached copy of this version still serves.
    for path in artifact_dir(version.source).rglob("*.parquet"):
        path.unlink()
    _, package = load_version(settings, "next-song", version.version)
    assert len(package.items) == 10


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("delete-arrays", "arrays.npz"),
        ("garble-items", "items.parquet"),
        ("delete-package", "artifacts/package"),
    ],
)
def test_a_missing_or_corrupt_artifact_names_what_is_wrong(
    settings: Settings, make_package, damage: str, named: str
):
    version = publish_package(settings, make_package(0.3))
    set_alias(settings, version.name, CHAMPION, version.version)
    package_dir = artifact_dir(version.source) / "artifacts" / "package"
    if damage == "delete-arrays":
        (package_dir / "model" / "arrays.npz").unlink()
    elif damage == "garble-items":
        (package_dir / "items.parquet").write_bytes(b"not parquet at all")
    else:
        for path in sorted(package_dir.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        package_dir.rmdir()
    with pytest.raises(RegistryError, match=f"version {version.version}.*{named}|{named}"):
        load_champion(settings, "next-song")
    assert resolve_champion(settings, "next-song").version == version.version


def test_an_unknown_task_is_refused_by_name(settings: Settings, make_package):
    with pytest.raises(RegistryError, match="unknown task 'radio'"):
        list_versions(settings, "radio")
    with pytest.raises(RegistryError, match="unknown task 'radio'"):
        publish_package(settings, make_package(task="radio"))


def test_an_unreachable_tracking_server_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    uri = f"http://127.0.0.1:{free_port()}"
    settings = load_settings("dev", [f"tracking.tracking_uri={uri!r}"])
    with pytest.raises(TrackingUnavailableError, match=f"tracking server {uri} is unreachable"):
        list_versions(settings, "next-song")

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


def test_models_list_shows_versions_aliases_and_metrics(settings: Settings, make_package):
    runner = CliRunner()
    empty = runner.invoke(app, ["models", "list", "--task", "next-song"])
    assert empty.exit_code == 0, empty.output
    assert "no registered versions yet" in empty.output

    first = publish_package(settings, make_package(0.3125))
    set_alias(settings, first.name, CHAMPION, first.version)
    publish_package(settings, make_package(0.25))
    listed = runner.invoke(app, ["models", "list", "--task", "next-song"])
    assert listed.exit_code == 0, listed.output
    assert "registered versions" in listed.output
    assert "champion" in listed.output and "challenger" in listed.output
    assert "0.3125" in listed.output and "0.2500" in listed.output

    unknown = runner.invoke(app, ["models", "list", "--task", "radio"])
    assert unknown.exit_code == 2
    assert "unknown task 'radio'" in unknown.output


def test_a_leaky_package_is_never_registered(settings: Settings, make_package):
    with pytest.raises(RegistryError, match="random-holdout-leaky package is never registered"):
        publish_package(settings, make_package(protocol="random-holdout-leaky"))
    assert list_versions(settings, "next-song") == []


def test_the_champion_probe_follows_the_alias(settings: Settings, make_package):
    assert champion_version(settings, "next-song") is None
    first = publish_package(settings, make_package(0.3))
    assert champion_version(settings, "next-song") is None
    set_alias(settings, first.name, CHAMPION, first.version)
    assert champion_version(settings, "next-song") == first.version
