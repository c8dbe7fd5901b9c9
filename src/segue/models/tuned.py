"""Tuned hyperparameters: the TOML file ``segue tune`` writes and every training reads.

Hyperparameters are layered, later wins: ``[models.<algorithm>]`` in the settings < the tuned
config ``<evaluation.tuned_dir>/<task>/<algorithm>.toml`` < explicit values (``--set``).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from segue.settings import Settings, SettingsError


def tuned_config_path(settings: Settings, task: str, algorithm: str) -> Path:
    return Path(settings.evaluation.tuned_dir) / task / f"{algorithm}.toml"


def load_tuned_params(settings: Settings, task: str, algorithm: str) -> dict[str, Any]:
    """The tuned ``[models.<algorithm>]`` table for a task, or ``{}`` when none was written."""
    path = tuned_config_path(settings, task, algorithm)
    if not path.exists():
        return {}
    try:
        tree = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from error
    table = tree.get("models", {}).get(algorithm, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [models.{algorithm}] must be a table")
    return table


def resolve_params(
    settings: Settings, task: str, algorithm: str, explicit: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Settings table < tuned config < explicit overrides."""
    return {
        **settings.model_params(algorithm),
        **load_tuned_params(settings, task, algorithm),
        **(explicit or {}),
    }


def write_tuned_params(
    settings: Settings,
    task: str,
    algorithm: str,
    params: dict[str, Any],
    *,
    comment_lines: list[str],
) -> Path:
    """Write the tuned table where training reads it; returns the path."""
    path = tuned_config_path(settings, task, algorithm)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}" for line in comment_lines]
    lines += ["", f'[models."{algorithm}"]']
    lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(params.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    raise TypeError(f"cannot write {value!r} to TOML")
