"""Tuned hyperparameters: the layers settings < tuned config < explicit values, per task."""

from __future__ import annotations

from pathlib import Path

from segue.models.tuned import resolve_params, tuned_config_path
from segue.settings import Settings, load_settings

SMALL = ["evaluation.holdout_per_user=3", "evaluation.cutoffs=[5, 10]"]


def _settings(*extra: str) -> Settings:
    return load_settings(overrides=[*SMALL, *extra])


def test_parameter_layers_settings_then_tuned_then_explicit(tmp_path: Path) -> None:
    settings = _settings(f"evaluation.tuned_dir={tmp_path / 'tuned'}")
    base = settings.model_params("ease")
    assert resolve_params(settings, "user-items", "ease") == base
    path = tuned_config_path(settings, "user-items", "ease")
    path.parent.mkdir(parents=True)
    path.write_text('[models."ease"]\nl2 = 42.0\n', encoding="utf-8")
    assert resolve_params(settings, "user-items", "ease") == {**base, "l2": 42.0}
    assert resolve_params(settings, "user-items", "ease", {"l2": 7.0}) == {**base, "l2": 7.0}
    assert resolve_params(settings, "next-song", "ease") == base  # tuned configs are per task
