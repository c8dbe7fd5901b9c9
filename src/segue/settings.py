"""Typed settings, layered: base.toml < profile (dev/stage/live) < SEGUE_* env < --set overrides.

Settings are read when asked (``load_settings``), never at import, so library code stays testable
and the CLI can pick the profile first.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

Profile = Literal["dev", "stage", "live"]
PROFILES: tuple[str, ...] = ("dev", "stage", "live")
ENV_PREFIX = "SEGUE_"
NESTED_DELIMITER = "__"


class SettingsError(ValueError):
    """A configuration value is missing, malformed or unsafe for the chosen profile."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _empty_is_none(value: Any) -> Any:
    # TOML has no null: an empty string stands for "not set" in optional path keys.
    return None if value == "" else value


class DataSettings(_Section):
    root: Path = Path(".segue/data")
    seed: int = 42
    implicit_threshold: float = 3.0
    min_item_count: int = Field(1, ge=1)
    min_sequence_length: int = Field(2, ge=1)
    max_sequence_length: int = Field(5000, ge=2)
    banned_users_file: Path | None = None
    bot_max_interactions: int = Field(0, ge=0)
    bot_window_seconds: int = Field(60, ge=1)
    drop_duplicates: bool = True
    max_song_length: int = Field(300, ge=10)

    _optional_paths = field_validator("banned_users_file", mode="before")(_empty_is_none)


class EvaluationSettings(_Section):
    k: int = Field(10, ge=1)
    cutoffs: list[int] = [5, 10, 20]
    holdout_per_user: int = Field(10, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.1, gt=0, lt=0.5)
    seed: int = 42
    tuned_dir: Path = Path(".segue/tuned")
    tuning_storage: str = ""
    positions_per_sequence: int = Field(0, ge=0)


class TrainingSettings(_Section):
    default_algorithm_next_song: str = "markov"
    default_algorithm_user_items: str = "ease"
    memory_limit_gb: float = Field(0.0, ge=0)


class TrackingSettings(_Section):
    tracking_uri: str = "sqlite:///.segue/mlflow.db"
    registry_uri: str = ""
    artifact_root: Path = Path(".segue/artifacts")
    experiment: str = "segue"
    registered_name_next_song: str = "{env}.segue-next-song"
    registered_name_user_items: str = "{env}.segue-user-items"
    promotion_metric: str = "ndcg_at_10"
    promotion_min_gain: float = Field(0.0, ge=0)
    model_cache_dir: Path = Path(".segue/cache/models")
    lock_uri: str = ""
    request_timeout_seconds: int = Field(10, ge=1)


class ServingSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    tasks: list[Literal["next-song", "user-items"]] = ["next-song", "user-items"]
    default_k: int = Field(10, ge=1)
    max_k: int = Field(100, ge=1)
    max_songs: int = Field(500, ge=1)
    max_feedback_events: int = Field(500, ge=1)
    max_body_bytes: int = Field(65536, ge=1024)
    admin_api_key: str = ""
    reload_interval_seconds: float = Field(30.0, ge=0)
    fuzzy_threshold: float = Field(83.0, ge=0, le=100)
    match_candidates: int = Field(50, ge=1)
    max_fuzzy_per_request: int = Field(100, ge=0)
    match_budget_ms: float = Field(25.0, ge=0)
    ban_list_file: Path | None = None
    max_per_artist: int = Field(0, ge=0)
    rerank: Literal["none", "diversity", "unpopular"] = "none"
    rerank_weight: float = Field(0.0, ge=0, le=1)
    workers: int = Field(1, ge=1)
    scoring_threads: int = Field(2, ge=1)
    max_batch: int = Field(64, ge=1)
    precomputed_dir: Path | None = None

    _optional_paths = field_validator("ban_list_file", "precomputed_dir", mode="before")(
        _empty_is_none
    )


class BatchSettings(_Section):
    batch_size: int = Field(256, ge=1)
    ray_actors: int = Field(2, ge=1)
    ray_actor_cpus: float = Field(1.0, gt=0)


class DistributedSettings(_Section):
    workers: int = Field(2, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0)
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    collective_timeout_seconds: int = Field(300, ge=1)
    ray_address: str = ""


class MonitoringSettings(_Section):
    enabled: bool = True
    event_log_dir: Path | None = Path(".segue/events")
    event_queue_size: int = Field(10000, ge=1)
    event_flush_events: int = Field(1000, ge=1)
    event_flush_seconds: float = Field(5.0, gt=0)
    hash_user_ids: bool = False
    summary_window_hours: float = Field(24.0, gt=0)
    summary_cache_seconds: float = Field(5.0, ge=0)
    metric_decline_tolerance: float = Field(0.1, ge=0, le=1)
    report_window_hours: float = Field(24.0, gt=0)
    report_dir: Path = Path(".segue/reports")
    attribution_window_seconds: float = Field(1800.0, gt=0)
    decline_p_value: float = Field(0.05, gt=0, lt=1)
    decline_min_impressions: int = Field(100, ge=1)
    max_short_list_share: float = Field(0.0, ge=0, le=1)
    drift_p_value: float = Field(0.01, gt=0, lt=1)
    drift_min_lists: int = Field(30, ge=1)
    drift_history_length_ks: float = Field(0.2, gt=0, le=1)
    drift_unknown_item_rate: float = Field(0.1, gt=0, le=1)
    drift_input_popularity_psi: float = Field(0.2, gt=0)
    drift_new_users: float = Field(0.2, gt=0, le=1)

    _optional_paths = field_validator("event_log_dir", mode="before")(_empty_is_none)


class Settings(BaseSettings):
    """The effective configuration of one Segue process."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="forbid", frozen=True
    )

    env: Profile = "dev"
    data: DataSettings = DataSettings()
    models: dict[str, dict[str, Any]] = {}
    evaluation: EvaluationSettings = EvaluationSettings()
    training: TrainingSettings = TrainingSettings()
    tracking: TrackingSettings = TrackingSettings()
    serving: ServingSettings = ServingSettings()
    batch: BatchSettings = BatchSettings()
    distributed: DistributedSettings = DistributedSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @model_validator(mode="after")
    def _refuse_unsafe_outside_dev(self) -> Settings:
        if self.env == "dev":
            return self
        problems = []
        if len(self.serving.admin_api_key) < 16:
            problems.append(
                "serving.admin_api_key must be set to a secret of at least 16 characters "
                f"in the {self.env} profile (SEGUE_SERVING__ADMIN_API_KEY)"
            )
        if self.env == "live" and self.tracking.tracking_uri.startswith("sqlite"):
            problems.append(
                "tracking.tracking_uri must point at a shared tracking server in the live profile, "
                f"not {self.tracking.tracking_uri!r}"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def registered_name(self, task: str) -> str:
        """The registry name for a task in this profile, e.g. ``dev.segue-next-song``."""
        templates = {
            "next-song": self.tracking.registered_name_next_song,
            "user-items": self.tracking.registered_name_user_items,
        }
        if task not in templates:
            raise SettingsError(f"unknown task {task!r}; expected one of {sorted(templates)}")
        return templates[task].format(env=self.env)

    def default_algorithm(self, task: str) -> str:
        """The algorithm `segue train` and `segue pipeline run` fit when --model is omitted."""
        defaults = {
            "next-song": self.training.default_algorithm_next_song,
            "user-items": self.training.default_algorithm_user_items,
        }
        if task not in defaults:
            raise SettingsError(f"unknown task {task!r}; expected one of {sorted(defaults)}")
        return defaults[task]

    def model_params(self, model: str) -> dict[str, Any]:
        """Hyperparameters for one model from the ``[models.<name>]`` table (may be empty)."""
        return dict(self.models.get(model, {}))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier wins: --set overrides (init kwargs) > SEGUE_* environment > TOML files.
        return (init_settings, _KeyedEnvSource(settings_cls), _TomlLayerSource(settings_cls))


class _KeyedEnvSource(EnvSettingsSource):
    """SEGUE_* variables, a section's keys one by one (``SEGUE_SERVING__PORT``), never a whole
    section in one variable: ``SEGUE_DATA`` names where datasets lie (tests, benchmarks), and
    would otherwise be read as the ``data`` section and refused as not JSON."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        value, key, value_is_complex = super().get_field_value(field, field_name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            return None, key, value_is_complex  # its keys come from SEGUE_SECTION__KEY
        return value, key, value_is_complex


_file_layer: ContextVar[dict[str, Any] | None] = ContextVar("segue_file_layer", default=None)


class _TomlLayerSource(PydanticBaseSettingsSource):
    """The merged base + profile TOML files, handed over by ``load_settings``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_file_layer.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_layer.get() or {})


def config_dir() -> Path:
    """Where the TOML profiles live: $SEGUE_CONFIG_DIR, ./configs, or the source checkout's."""
    explicit = os.environ.get("SEGUE_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    local = Path.cwd() / "configs"
    if (local / "base.toml").exists():
        return local
    return Path(__file__).resolve().parents[2] / "configs"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from error


def flatten_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"section": {"key": v}}`` -> ``{"section.key": v}``, the form ``--set`` and sources use."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and (value or dotted == "models"):
            flat.update(flatten_keys(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SettingsError(f"--set {dotted}: {part!r} is a value, not a section")
    node[parts[-1]] = value


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(assignment: str) -> tuple[str, Any]:
    """Parse ``section.key=value``; the value is read as TOML when it can be, else as a string."""
    if "=" not in assignment:
        raise SettingsError(f"--set {assignment!r}: expected section.key=value")
    dotted, raw = assignment.split("=", 1)
    dotted = dotted.strip()
    if not dotted or "." not in dotted:
        raise SettingsError(f"--set {assignment!r}: the key must name a section, e.g. serving.port")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return dotted, value


def _env_layer() -> dict[str, Any]:
    """SEGUE_SECTION__KEY variables as a flat dict, for provenance only (pydantic parses them)."""
    flat: dict[str, Any] = {}
    for name, value in os.environ.items():
        if not name.startswith(ENV_PREFIX) or NESTED_DELIMITER not in name:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace(NESTED_DELIMITER, ".")
        flat[dotted] = value
    return flat


def _describe_problem(problem: Any) -> str:
    location = ".".join(str(part) for part in problem.get("loc", ()))
    message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def resolve_profile(env: str | None = None) -> str:
    profile = env or os.environ.get("SEGUE_ENV") or "dev"
    if profile not in PROFILES:
        raise SettingsError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return profile


def load_settings(env: str | None = None, overrides: list[str] | None = None) -> Settings:
    """Build the effective settings for a profile, applying --set style overrides last."""
    settings, _ = load_settings_with_sources(env, overrides)
    return settings


def load_settings_with_sources(
    env: str | None = None, overrides: list[str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """Settings plus, for every leaf key, the layer its value came from."""
    profile = resolve_profile(env)
    directory = config_dir()
    base = _read_toml(directory / "base.toml")
    overlay = _read_toml(directory / f"{profile}.toml")
    files = _merge(base, overlay)
    files["env"] = profile

    sources = {key: f"{directory / 'base.toml'}" for key in flatten_keys(base)}
    sources.update({key: f"{directory / f'{profile}.toml'}" for key in flatten_keys(overlay)})
    sources["env"] = "--env" if env else ("SEGUE_ENV" if os.environ.get("SEGUE_ENV") else "default")
    sources.update(
        {key: f"environment {ENV_PREFIX}{key.upper().replace('.', '__')}" for key in _env_layer()}
    )

    explicit: dict[str, Any] = {"env": profile}
    for assignment in overrides or []:
        dotted, value = parse_override(assignment)
        _set_dotted(explicit, dotted, value)
        sources[dotted] = f"--set {dotted}"

    token = _file_layer.set(files)
    try:
        settings = Settings(**explicit)
    except ValidationError as error:
        problems = "; ".join(_describe_problem(problem) for problem in error.errors())
        raise SettingsError(f"invalid configuration for profile {profile!r}: {problems}") from error
    finally:
        _file_layer.reset(token)
    for key in flatten_keys(settings.model_dump(mode="json")):
        sources.setdefault(key, "default")
    return settings, sources
