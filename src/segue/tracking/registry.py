"""The model registry: one registered model per task and profile, addressed by alias only.

A new version gets the alias ``challenger`` and tags describing how it was made and measured; the
promotion job (``segue.jobs.promote``) moves ``champion``. Serving loads
``models:/<registered_name>@champion`` and never a stage or a version number.

``Registry`` is bound to one ``MlflowClient`` for its lifetime: a job opens it once
(``open_registry``) and hands it to every step that reads or moves aliases, tags and versions.

Tags every Segue version carries (values are strings, as MLflow stores them)::

    segue.task                 next-song | user-items
    segue.model                the algorithm (model family), e.g. ease
    segue.dataset_fingerprint  content hash of the dataset the version was trained and tested on
    segue.protocol             the split protocol of its evaluation
    metric.<key>               its test metrics, e.g. metric.ndcg_at_10
    segue.previous_champion    set when it became champion: the version it replaced ("" = none)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from segue.evaluation.protocols import is_leaky
from segue.settings import Settings, SettingsError
from segue.tracking.package import ModelPackage
from segue.tracking.pyfunc import LoggedPackage, log_package
from segue.tracking.runs import TrackingError, open_tracking
from segue.tracking.stores import absolute_store, registry_uri, tracking_uri

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_TASK = "segue.task"
TAG_ALGORITHM = "segue.model"
TAG_FINGERPRINT = "segue.dataset_fingerprint"
TAG_PROTOCOL = "segue.protocol"
TAG_PREVIOUS_CHAMPION = "segue.previous_champion"
METRIC_TAG_PREFIX = "metric."
_T = TypeVar("_T")


class RegistryError(ValueError):
    """A registry request that cannot be met: a missing version, alias, artifact or metric."""


class TrackingUnavailableError(RegistryError):
    """The tracking server or store does not answer."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version as the lifecycle commands see it."""

    name: str  # the registered name, e.g. dev.segue-next-song (MLflow's ``ModelVersion.name``)
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
    def algorithm(self) -> str:
        return self.tags.get(TAG_ALGORITHM, "")

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


def registered_name(settings: Settings, task: str) -> str:
    """The registry's name for a task in this profile, e.g. ``dev.segue-next-song``."""
    try:
        return settings.registered_name(task)
    except SettingsError as error:
        raise RegistryError(str(error)) from error


def version_tags(package: ModelPackage) -> dict[str, str]:
    """The registry tags of a package: provenance, protocol and test metrics."""
    tags = {
        TAG_TASK: package.task,
        TAG_ALGORITHM: package.algorithm,
        TAG_FINGERPRINT: package.dataset_fingerprint,
        TAG_PROTOCOL: package.protocol,
    }
    for key, value in sorted(package.metrics.items()):
        tags[f"{METRIC_TAG_PREFIX}{key}"] = repr(float(value))
    return tags


def open_registry(settings: Settings) -> Registry:
    """The registry of the configured stores, bound to one client.

    MLflow's global URIs are set too: logging a pyfunc model goes through its fluent API.
    """
    settings = absolute_store(settings)
    tracking, registry = tracking_uri(settings), registry_uri(settings)
    # The download bars of MLflow would interleave with Segue's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    return Registry(settings, MlflowClient(tracking_uri=tracking, registry_uri=registry))


class Registry:
    """Registered versions, their aliases and tags, through one client held for its lifetime."""

    def __init__(self, settings: Settings, client: MlflowClient) -> None:
        self.settings = settings
        self.client = client

    @property
    def tracking_uri(self) -> str:
        return tracking_uri(self.settings)

    def registered_name(self, task: str) -> str:
        return registered_name(self.settings, task)

    # -- adding versions ----------------------------------------------------------------------
    def publish(self, package: ModelPackage, *, run_id: str | None = None) -> VersionInfo:
        """Log ``package`` (into ``run_id``, or a new run of the configured experiment) and
        register it as its task's new challenger."""
        self.registered_name(package.task)  # an unknown task fails before anything is written
        if is_leaky(package.protocol):
            raise RegistryError(
                f"a {package.protocol} package is never registered: it trained on its test targets"
            )
        try:
            if run_id is None:
                store = open_tracking(self.settings)
                with mlflow.start_run(
                    experiment_id=store.experiment_id,
                    run_name=f"{package.task}/{package.algorithm}",
                ):
                    logged = log_package(package)
            else:
                logged = log_package(package, run_id=run_id)
        except (OSError, TrackingError) as error:
            raise TrackingUnavailableError(self._unreachable(error)) from error
        except MlflowException as error:
            if _is_unreachable(error):
                raise TrackingUnavailableError(self._unreachable(error)) from error
            raise RegistryError(f"cannot log the {package.algorithm} package: {error}") from error
        return self.register(package, logged)

    def register(self, package: ModelPackage, logged: LoggedPackage) -> VersionInfo:
        """Register a logged package as a new version of its task's model and make it
        challenger."""
        name = self.registered_name(package.task)
        try:
            self._call(self.client.get_registered_model, name)
        except RegistryError:
            try:
                self._call(self.client.create_registered_model, name)
            except RegistryError:
                # Another process created it between the two calls.
                self._call(self.client.get_registered_model, name)
        try:
            created = self._call(
                self.client.create_model_version,
                name,
                source=logged.model_uri,
                run_id=logged.run_id or None,
                tags=version_tags(package),
                model_id=logged.model_id or None,
            )
            self.set_alias(name, CHALLENGER, str(created.version))
        except MlflowException as error:
            raise RegistryError(f"{name}: cannot register {logged.model_uri}: {error}") from error
        return self.get_version(name, str(created.version))

    # -- reading ------------------------------------------------------------------------------
    def get_version(self, name: str, version: str) -> VersionInfo:
        found = self._call(self.client.get_model_version, name, str(version))
        aliases = self._aliases_by_version(name)
        return _info(found, aliases.get(str(found.version), ()))

    def version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        """The version holding ``alias``, or None when no version holds it (or the model is new)."""
        aliases = self._aliases_by_version(name, missing_ok=True)
        for version, names in aliases.items():
            if alias in names:
                found = self._call(self.client.get_model_version, name, version)
                return _info(found, names)
        return None

    def holder(self, name: str, alias: str) -> str:
        """The version number holding ``alias``, "" when none does."""
        info = self.version_by_alias(name, alias)
        return info.version if info is not None else ""

    def list_versions(self, task: str) -> list[VersionInfo]:
        """Every version of the task's registered model, newest first, with its aliases."""
        name = self.registered_name(task)
        aliases = self._aliases_by_version(name, missing_ok=True)
        versions = self._call(self.client.search_model_versions, f"name='{name}'")
        infos = [_info(v, aliases.get(str(v.version), ())) for v in versions]
        return sorted(infos, key=lambda info: int(info.version), reverse=True)

    def champion_version(self, task: str) -> str | None:
        """The version number holding ``champion`` (None if none), in one registry call: a cheap
        probe for a server that reloads when the alias moves."""
        aliases = self._aliases_by_version(self.registered_name(task), missing_ok=True)
        return next((version for version, names in aliases.items() if CHAMPION in names), None)

    def resolve_champion(self, task: str) -> VersionInfo:
        """The version holding ``champion`` for a task; a clear error when there is none yet."""
        name = self.registered_name(task)
        champion = self.version_by_alias(name, CHAMPION)
        if champion is None:
            raise RegistryError(
                f"{name} has no champion yet; register a model and run "
                f"`segue promote --task {task}`"
            )
        return champion

    def download_uri(self, version: VersionInfo) -> str:
        """Where the artifacts of a registered version can be downloaded from."""
        # Raw MLflow errors: the package cache names the version and its source when it fails.
        return self.client.get_model_version_download_uri(version.name, version.version)

    # -- changing aliases and tags ------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(self.client.set_registered_model_alias, name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._call(self.client.delete_registered_model_alias, name, alias)

    def set_tags(self, name: str, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self._call(self.client.set_model_version_tag, name, str(version), key, str(value))

    # -- helpers ------------------------------------------------------------------------------
    def _aliases_by_version(
        self, name: str, *, missing_ok: bool = False
    ) -> dict[str, tuple[str, ...]]:
        # Version search results do not carry aliases on every store; the registered model does.
        try:
            registered = self._call(self.client.get_registered_model, name)
        except RegistryError:
            if missing_ok:
                return {}
            raise
        grouped: dict[str, list[str]] = {}
        for alias, version in (registered.aliases or {}).items():
            grouped.setdefault(str(version), []).append(alias)
        return {version: tuple(sorted(names)) for version, names in grouped.items()}

    def _call(self, method: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run one client call, turning MLflow and connection failures into Segue errors."""
        try:
            return method(*args, **kwargs)
        except MlflowException as error:
            if _is_unreachable(error):
                raise TrackingUnavailableError(self._unreachable(error)) from error
            raise RegistryError(error.message) from error
        except OSError as error:
            raise TrackingUnavailableError(self._unreachable(error)) from error

    def _unreachable(self, error: Exception) -> str:
        return (
            f"tracking server {self.settings.tracking.tracking_uri} is unreachable "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]})"
        )


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


def _is_unreachable(error: Exception) -> bool:
    text = str(error)
    return any(
        marker in text
        for marker in ("Max retries exceeded", "Connection refused", "timed out", "API request to")
    ) and not getattr(error, "error_code", "").startswith(("RESOURCE_", "INVALID_PARAMETER"))
