"""The model registry: one registered model per task and profile, addressed by alias only.

A new version gets the alias ``challenger`` and tags describing how it was made and measured; the
promotion gate (``segue.tracking.promotion``) moves ``champion``. Serving loads
``models:/<name>@champion`` and never a stage or a version number.

Tags every Segue version carries (values are strings, as MLflow stores them)::

    segue.task                 next-song | user-items
    segue.model                the model family, e.g. ease
    segue.dataset_fingerprint  content hash of the dataset the version was trained and tested on
    segue.protocol             the split protocol of its evaluation
    metric.<key>               its test metrics, e.g. metric.ndcg_at_10
    segue.previous_champion    set when it became champion: the version it replaced ("" = none)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue.settings import Settings, SettingsError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from segue.tracking.package import ModelPackage
    from segue.tracking.packaging import LoggedPackage

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_TASK = "segue.task"
TAG_MODEL = "segue.model"
TAG_FINGERPRINT = "segue.dataset_fingerprint"
TAG_PROTOCOL = "segue.protocol"
TAG_PREVIOUS_CHAMPION = "segue.previous_champion"
METRIC_TAG_PREFIX = "metric."
LEAKY_SUFFIX = "-leaky"


class RegistryError(ValueError):
    """A registry request that cannot be met: a missing version, alias, artifact or metric."""


class TrackingUnavailableError(RegistryError):
    """The tracking server or store does not answer."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version as the lifecycle commands see it."""

    name: str
    version: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    source: str = ""
    created_ms: int = 0

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def model(self) -> str:
        return self.tags.get(TAG_MODEL, "")

    @property
    def dataset_fingerprint(self) -> str:
        return self.tags.get(TAG_FINGERPRINT, "")

    @property
    def protocol(self) -> str:
        return self.tags.get(TAG_PROTOCOL, "")

    @property
    def previous_champion(self) -> str:
        return self.tags.get(TAG_PREVIOUS_CHAMPION, "")

    @property
    def metrics(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for key, value in self.tags.items():
            if key.startswith(METRIC_TAG_PREFIX):
                try:
                    values[key.removeprefix(METRIC_TAG_PREFIX)] = float(value)
                except ValueError:
                    continue
        return values

    def metric(self, key: str) -> float:
        """The version's value for ``key``; a clear error when the version never recorded it."""
        metrics = self.metrics
        if key not in metrics:
            known = ", ".join(sorted(metrics)) or "none"
            raise RegistryError(
                f"{self.name} version {self.version} has no metric {key!r} (it has: {known})"
            )
        return metrics[key]


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def absolute_store(settings: Settings) -> Settings:
    """``settings`` with relative SQLite store paths made absolute.

    MLflow caches one store per URI, so a relative ``sqlite:///.segue/mlflow.db`` would keep
    pointing at the first working directory's file after a change of directory.
    """
    tracking = settings.tracking
    updated = {
        key: _absolute_sqlite(getattr(tracking, key)) for key in ("tracking_uri", "registry_uri")
    }
    if all(getattr(tracking, key) == value for key, value in updated.items()):
        return settings
    return settings.model_copy(update={"tracking": tracking.model_copy(update=updated)})


def _absolute_sqlite(uri: str) -> str:
    path = sqlite_path(uri)
    if path is None or path.is_absolute() or str(path) == ":memory:":
        return uri
    return "sqlite:///" + str(path.resolve()) + uri[len("sqlite:///") + len(str(path)) :]


def open_client(settings: Settings) -> MlflowClient:
    """A client on the configured tracking and registry stores.

    MLflow's global URIs are set too: logging a pyfunc model goes through its fluent API.
    """
    import mlflow
    from mlflow import MlflowClient

    from segue.tracking.runs import prepare_store_uri

    settings = absolute_store(settings)
    tracking_uri = prepare_store_uri(settings.tracking.tracking_uri)
    registry_uri = prepare_store_uri(settings.tracking.registry_uri or tracking_uri)
    # The download bars of MLflow would interleave with Segue's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)


def model_name(settings: Settings, task: str) -> str:
    try:
        return settings.registered_model_name(task)
    except SettingsError as error:
        raise RegistryError(str(error)) from error


def version_tags(package: ModelPackage) -> dict[str, str]:
    """The registry tags of a package: provenance, protocol and test metrics."""
    tags = {
        TAG_TASK: package.task,
        TAG_MODEL: package.model_name,
        TAG_FINGERPRINT: package.dataset_fingerprint,
        TAG_PROTOCOL: package.protocol,
    }
    for key, value in sorted(package.metrics.items()):
        tags[f"{METRIC_TAG_PREFIX}{key}"] = repr(float(value))
    return tags


def register_package(
    settings: Settings, package: ModelPackage, logged: LoggedPackage
) -> VersionInfo:
    """Register a logged package as a new version of its task's model and make it challenger."""
    from mlflow.exceptions import MlflowException

    client = open_client(settings)
    name = model_name(settings, package.task)
    try:
        _call(settings, client.get_registered_model, name)
    except RegistryError:
        try:
            _call(settings, client.create_registered_model, name)
        except RegistryError:
            # Another process created it between the two calls.
            _call(settings, client.get_registered_model, name)
    try:
        created = _call(
            settings,
            client.create_model_version,
            name,
            source=logged.model_uri,
            run_id=logged.run_id or None,
            tags=version_tags(package),
            model_id=logged.model_id or None,
        )
        _call(settings, client.set_registered_model_alias, name, CHALLENGER, str(created.version))
    except MlflowException as error:
        raise RegistryError(f"{name}: cannot register {logged.model_uri}: {error}") from error
    return get_version(settings, name, str(created.version))


def publish_package(
    settings: Settings, package: ModelPackage, *, run_id: str | None = None
) -> VersionInfo:
    """Log ``package`` (into ``run_id``, or a new run of the configured experiment) and register
    it as its task's new challenger."""
    import mlflow

    from segue.tracking.packaging import log_package
    from segue.tracking.runs import TrackingError, open_tracking

    model_name(settings, package.task)  # an unknown task fails before anything is written
    if package.protocol.endswith(LEAKY_SUFFIX):
        raise RegistryError(
            f"a {package.protocol} package is never registered: it trained on its test targets"
        )
    open_client(settings)
    try:
        if run_id is None:
            store = open_tracking(absolute_store(settings))
            with mlflow.start_run(
                experiment_id=store.experiment_id, run_name=f"{package.task}/{package.model_name}"
            ):
                logged = log_package(package)
        else:
            logged = log_package(package, run_id=run_id)
    except (OSError, TrackingError) as error:
        raise TrackingUnavailableError(_unreachable(settings, error)) from error
    except mlflow.exceptions.MlflowException as error:
        if _is_unreachable(error):
            raise TrackingUnavailableError(_unreachable(settings, error)) from error
        raise RegistryError(f"cannot log the {package.model_name} package: {error}") from error
    return register_package(settings, package, logged)


def get_version(settings: Settings, name: str, version: str) -> VersionInfo:
    client = open_client(settings)
    found = _call(settings, client.get_model_version, name, str(version))
    aliases = _aliases_by_version(settings, client, name)
    return _info(found, aliases.get(str(found.version), ()))


def version_by_alias(settings: Settings, name: str, alias: str) -> VersionInfo | None:
    """The version holding ``alias``, or None when no version holds it (or the model is new)."""
    client = open_client(settings)
    aliases = _aliases_by_version(settings, client, name, missing_ok=True)
    for version, names in aliases.items():
        if alias in names:
            found = _call(settings, client.get_model_version, name, version)
            return _info(found, names)
    return None


def list_versions(settings: Settings, task: str) -> list[VersionInfo]:
    """Every version of the task's registered model, newest first, with its aliases."""
    client = open_client(settings)
    name = model_name(settings, task)
    aliases = _aliases_by_version(settings, client, name, missing_ok=True)
    versions = _call(settings, client.search_model_versions, f"name='{name}'")
    infos = [_info(v, aliases.get(str(v.version), ())) for v in versions]
    return sorted(infos, key=lambda info: int(info.version), reverse=True)


def set_alias(settings: Settings, name: str, alias: str, version: str) -> None:
    client = open_client(settings)
    _call(settings, client.set_registered_model_alias, name, alias, str(version))


def delete_alias(settings: Settings, name: str, alias: str) -> None:
    client = open_client(settings)
    _call(settings, client.delete_registered_model_alias, name, alias)


def set_tags(settings: Settings, name: str, version: str, tags: dict[str, Any]) -> None:
    client = open_client(settings)
    for key, value in tags.items():
        _call(settings, client.set_model_version_tag, name, str(version), key, str(value))


def champion_version(settings: Settings, task: str) -> str | None:
    """The version number holding ``champion`` (None if none), in one registry call: a cheap
    probe for a server that reloads when the alias moves."""
    client = open_client(settings)
    aliases = _aliases_by_version(settings, client, model_name(settings, task), missing_ok=True)
    return next((version for version, names in aliases.items() if CHAMPION in names), None)


def resolve_champion(settings: Settings, task: str) -> VersionInfo:
    """The version holding ``champion`` for a task; a clear error when there is none yet."""
    name = model_name(settings, task)
    champion = version_by_alias(settings, name, CHAMPION)
    if champion is None:
        raise RegistryError(
            f"{name} has no champion yet; register a model and run `segue promote --task {task}`"
        )
    return champion


def load_champion(settings: Settings, task: str) -> tuple[VersionInfo, ModelPackage]:
    """The champion's version and its package, through Segue's cached fast loader.

    The alias is resolved to a version first, so the download cache is keyed by version and a
    moved alias is picked up on the next call.
    """
    from segue.tracking.packaging import load_registered_package

    champion = resolve_champion(settings, task)
    return champion, load_registered_package(settings, champion)


def load_version(settings: Settings, task: str, version: str) -> tuple[VersionInfo, ModelPackage]:
    from segue.tracking.packaging import load_registered_package

    info = get_version(settings, model_name(settings, task), version)
    return info, load_registered_package(settings, info)


def _aliases_by_version(
    settings: Settings, client: MlflowClient, name: str, *, missing_ok: bool = False
) -> dict[str, tuple[str, ...]]:
    # Version search results do not carry aliases on every store; the registered model does.
    try:
        registered = _call(settings, client.get_registered_model, name)
    except RegistryError:
        if missing_ok:
            return {}
        raise
    grouped: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        grouped.setdefault(str(version), []).append(alias)
    return {version: tuple(sorted(names)) for version, names in grouped.items()}


def _info(version: Any, aliases: tuple[str, ...]) -> VersionInfo:
    return VersionInfo(
        name=version.name,
        version=str(version.version),
        aliases=tuple(aliases),
        tags=dict(version.tags or {}),
        run_id=version.run_id or "",
        source=version.source or "",
        created_ms=int(version.creation_timestamp or 0),
    )


def _call(settings: Settings, method: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one client call, turning MLflow and connection failures into Segue errors."""
    from mlflow.exceptions import MlflowException

    try:
        return method(*args, **kwargs)
    except MlflowException as error:
        if _is_unreachable(error):
            raise TrackingUnavailableError(_unreachable(settings, error)) from error
        raise RegistryError(error.message) from error
    except OSError as error:
        raise TrackingUnavailableError(_unreachable(settings, error)) from error


def _is_unreachable(error: Exception) -> bool:
    text = str(error)
    return any(
        marker in text
        for marker in ("Max retries exceeded", "Connection refused", "timed out", "API request to")
    ) and not getattr(error, "error_code", "").startswith(("RESOURCE_", "INVALID_PARAMETER"))


def _unreachable(settings: Settings, error: Exception) -> str:
    return (
        f"tracking server {settings.tracking.tracking_uri} is unreachable "
        f"({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    )
