"""Configuration layers: base < profile < SEGUE_* env < --set, with provenance and live-profile safety."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from segue.settings import SettingsError, load_settings, load_settings_with_sources

REPO = Path(__file__).resolve().parents[1]


def test_dev_is_the_default_profile_and_base_values_apply() -> None:
    settings = load_settings()
    assert settings.env == "dev"
    assert settings.data.implicit_threshold == 3.0
    assert settings.tracking.tracking_uri == "sqlite:///.segue/mlflow.db"


def test_profile_overlay_changes_only_what_it_names() -> None:
    stage = load_settings("stage", ["serving.admin_api_key=0123456789abcdef"])
    assert stage.serving.max_per_artist == 3
    assert stage.data.implicit_threshold == 3.0


def test_environment_beats_files_and_set_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_SERVING__PORT", "7001")
    assert load_settings().serving.port == 7001
    settings, sources = load_settings_with_sources(overrides=["serving.port=7002"])
    assert settings.serving.port == 7002
    assert sources["serving.port"] == "--set serving.port"


def test_sources_name_the_layer_of_each_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_DATA__SEED", "7")
    _, sources = load_settings_with_sources("stage", ["serving.admin_api_key=0123456789abcdef"])
    assert sources["data.seed"] == "environment SEGUE_DATA__SEED"
    assert sources["serving.max_per_artist"].endswith("stage.toml")
    assert sources["data.implicit_threshold"].endswith("base.toml")


def test_segue_data_names_where_datasets_lie_not_the_data_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGUE_DATA", "/srv/datasets")  # as tests and benchmarks read it
    monkeypatch.setenv("SEGUE_DATA__SEED", "7")
    assert load_settings().data.seed == 7


def test_profile_from_segue_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGUE_ENV", "stage")
    monkeypatch.setenv("SEGUE_SERVING__ADMIN_API_KEY", "0123456789abcdef")
    assert load_settings().env == "stage"


def test_model_tables_merge_key_by_key() -> None:
    settings = load_settings(overrides=["models.sasrec.epochs=1"])
    assert settings.model_params("sasrec")["epochs"] == 1
    assert settings.model_params("sasrec")["embedding_dim"] == 64


def test_live_refuses_a_missing_admin_key_and_a_local_store() -> None:
    with pytest.raises(SettingsError) as error:
        load_settings("live")
    message = str(error.value)
    assert "serving.admin_api_key" in message
    assert "tracking.tracking_uri" in message


def test_live_accepts_safe_values() -> None:
    settings = load_settings(
        "live",
        ["serving.admin_api_key=0123456789abcdef", "tracking.tracking_uri='http://mlflow:5000'"],
    )
    assert settings.serving.workers == 2


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["serving.port=notanumber"], "serving.port"),
        (["serving.nosuchkey=1"], "serving.nosuchkey"),
        (["port=1"], "must name a section"),
        (["serving.port"], "expected section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(overrides: list[str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment.replace(".", r"\.")):
        load_settings(overrides=overrides)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown profile 'prod'"):
        load_settings("prod")


def test_empty_optional_paths_mean_unset() -> None:
    settings = load_settings()
    assert settings.data.banned_users_file is None
    assert settings.serving.ban_list_file is None


def test_every_base_key_is_documented_with_a_comment() -> None:
    for number, line in enumerate((REPO / "configs" / "base.toml").read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "[")):
            assert "#" in stripped, f"base.toml line {number} has no comment: {stripped}"


def test_config_show_cli_reports_values_and_sources() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "segue.cli",
            "--set",
            "serving.port=9100",
            "config",
            "show",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"value": 9100' in result.stdout
    assert "--set serving.port" in result.stdout


def test_config_show_cli_refuses_live_without_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "segue.cli", "--env", "live", "config", "show"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "admin_api_key" in result.stderr


def test_importing_segue_does_not_import_torch_or_mlflow() -> None:
    code = "import sys, segue, segue.settings, segue.cli.main; print('torch' in sys.modules, 'mlflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False False"
