"""Fetching a registered version's package for serving: download once, cache, load.

A version's artifacts are downloaded into a cache keyed by store, registered name and version,
then read with ``ModelPackage.load``; the Segue server loads its champions this way. The alias is
resolved to a version first, so a moved alias is picked up on the next call.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from pathlib import Path

import mlflow.artifacts
from mlflow.exceptions import MlflowException

from segue.models.base import ModelError
from segue.settings import Settings
from segue.tracking.package import ModelPackage, PackageError
from segue.tracking.pyfunc import PACKAGE_ARTIFACT
from segue.tracking.registry import Registry, RegistryError, VersionInfo
from segue.tracking.stores import registry_uri

PACKAGE_SUBDIR = Path("artifacts") / PACKAGE_ARTIFACT
_COMPLETE_MARKER = ".segue-complete"


def cache_dir(settings: Settings, version: VersionInfo) -> Path:
    """Where one version's download lives: per store (hashed URI), registered name and version."""
    digest = hashlib.sha256(registry_uri(settings).encode()).hexdigest()[:12]
    return settings.tracking.model_cache_dir / digest / version.name / version.version


def load_champion(registry: Registry, task: str) -> tuple[VersionInfo, ModelPackage]:
    """The champion's version and its package."""
    champion = registry.resolve_champion(task)
    return champion, load_registered_package(registry, champion)


def load_version(registry: Registry, task: str, version: str) -> tuple[VersionInfo, ModelPackage]:
    info = registry.get_version(registry.registered_name(task), version)
    return info, load_registered_package(registry, info)


def load_registered_package(registry: Registry, version: VersionInfo) -> ModelPackage:
    """The package of a registered version, downloaded once and reused while the source matches.

    A cached copy that no longer loads is removed and fetched again once.
    """
    directory, downloaded = _fetch(registry, version)
    try:
        return _read_package(directory, version)
    except RegistryError:
        if downloaded:
            raise
        shutil.rmtree(cache_dir(registry.settings, version), ignore_errors=True)
        directory, _ = _fetch(registry, version)
        return _read_package(directory, version)


def fetch_package_dir(registry: Registry, version: VersionInfo) -> Path:
    """The local package directory of a registered version, downloaded when not cached."""
    return _fetch(registry, version)[0]


def _fetch(registry: Registry, version: VersionInfo) -> tuple[Path, bool]:
    # A download goes to a scratch folder renamed into place when complete, so a reader never
    # sees half a package.
    target = cache_dir(registry.settings, version)
    downloaded = not _is_cached(target, version)
    if downloaded:
        _download(registry, version, target)
    return target / PACKAGE_SUBDIR, downloaded


def _is_cached(target: Path, version: VersionInfo) -> bool:
    marker = target / _COMPLETE_MARKER
    return marker.exists() and marker.read_text(encoding="utf-8") == version.source


def _download(registry: Registry, version: VersionInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        uri = registry.download_uri(version)
        # The model's root folder arrives inside the destination, under its own base name.
        root = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(scratch), tracking_uri=registry.tracking_uri
            )
        )
        (root / _COMPLETE_MARKER).write_text(version.source, encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        root.rename(target)
    except (MlflowException, OSError) as error:
        raise RegistryError(
            f"{version.name} version {version.version}: cannot download its artifacts "
            f"from {version.source}: {error}"
        ) from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_package(package_dir: Path, version: VersionInfo) -> ModelPackage:
    if not package_dir.is_dir():
        raise RegistryError(
            f"{version.name} version {version.version} holds no Segue package "
            f"({PACKAGE_SUBDIR} is missing from {version.source})"
        )
    try:
        return ModelPackage.load(package_dir)
    except (PackageError, ModelError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise RegistryError(
            f"{version.name} version {version.version}: its package is missing or corrupt: {error}"
        ) from error
