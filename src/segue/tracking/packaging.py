"""A ModelPackage as one MLflow pyfunc model, and Segue's fast, cached loader for it.

The logged model holds the package directory as its artifact ``package`` (arrays, vocabularies,
catalogue with artists and titles, config, dataset fingerprint, split and metrics), so nothing
from training is needed to serve it. It loads two ways:

- ``load_registered_package``: download the version's artifacts once into a cache keyed by store
  and version, then ``ModelPackage.load``. The Segue server uses this.
- ``mlflow.pyfunc.load_model(uri).predict(frame, params={"k": 10})``: a DataFrame with a
  ``history`` column (lists of item keys) and/or a ``user`` column (known user ids) in, a
  DataFrame of ``items`` (top-k keys) and ``scores`` out. ``mlflow models serve --env-manager
  local`` serves the same thing, in an environment where Segue is installed.

The model is logged from code (a two-line script that builds ``SeguePyfuncModel``), so loading it
unpickles nothing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from segue.models.base import ModelError
from segue.ranking.topk import mask_items, top_k
from segue.tracking.package import ModelPackage, PackageError

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

    from segue.settings import Settings
    from segue.tracking.registry import VersionInfo
    from segue.training_job import TrainingResult

MODEL_NAME = "model"
PACKAGE_ARTIFACT = "package"
PACKAGE_SUBDIR = Path("artifacts") / PACKAGE_ARTIFACT
DEFAULT_K = 10
_COMPLETE_MARKER = ".segue-complete"
_ENTRY_SCRIPT = (
    "from mlflow.models import set_model\n"
    "from segue.tracking.packaging import SeguePyfuncModel\n"
    "set_model(SeguePyfuncModel())\n"
)
_BASE_REQUIREMENTS = ("mlflow", "numpy", "pandas", "pyarrow", "scipy", "pydantic")


@dataclass(frozen=True)
class LoggedPackage:
    """Where a package was logged: the model URI to register, its run and MLflow model id."""

    model_uri: str
    run_id: str
    model_id: str


class SeguePyfuncModel(mlflow.pyfunc.PythonModel):
    """Top-k recommendations from a Segue package for MLflow's generic pyfunc interface."""

    def load_context(self, context: Any) -> None:
        self.package = ModelPackage.load(context.artifacts[PACKAGE_ARTIFACT])
        keys = self.package.items["key"].astype(str).to_numpy()
        self.keys = keys
        self.index_of = {key: index for index, key in enumerate(keys)}

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k", DEFAULT_K))
        rows = len(model_input)
        users = _column(model_input, "user", rows)
        histories = _column(model_input, "history", rows)
        cases = [
            self._history(user, history) for user, history in zip(users, histories, strict=True)
        ]
        if not cases:
            return pd.DataFrame({"items": [], "scores": []})
        scores = self.package.scorer.score(cases)
        masked = mask_items(scores, cases)
        ranked = top_k(masked, k)
        items, values = [], []
        for row, indices in enumerate(ranked):
            kept = indices[indices >= 0]
            items.append([str(key) for key in self.keys[kept]])
            values.append([float(value) for value in masked[row, kept]])
        return pd.DataFrame({"items": items, "scores": values})

    def _history(self, user: Any, history: Any) -> np.ndarray:
        users = _as_list(user)
        known = self.package.user_histories.get(str(users[0])) if users else None
        if known is None:
            known = np.empty(0, np.int64)
        # Unknown keys are dropped here: an index of -1 would mask the last item.
        given = [self.index_of[key] for key in map(str, _as_list(history)) if key in self.index_of]
        return np.concatenate([known, np.asarray(given, dtype=np.int64)])


def _column(frame: pd.DataFrame, name: str, rows: int) -> list[Any]:
    return list(frame[name]) if name in frame.columns else [None] * rows


def _as_list(value: Any) -> list[Any]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    return list(value) if isinstance(value, Iterable) else [value]


def package_from_training(result: TrainingResult) -> ModelPackage:
    """The servable package of a training run: scorer, catalogue, known histories, provenance.

    User-items packages keep every user's full known history (to answer "recommend for user u"
    and to exclude what u already has); next-song requests carry their own songs.
    """
    from segue.evaluation.protocols import history_order
    from segue.tracking.package import histories_by_id

    dataset = result.dataset
    histories = (
        histories_by_id(dataset.sequences(history_order(dataset)))
        if result.task == "user-items"
        else {}
    )
    return ModelPackage(
        task=result.task,
        scorer=result.model,
        items=dataset.items,
        user_histories=histories,
        aliases=dataset.aliases,
        metadata={
            "dataset_fingerprint": dataset.fingerprint,
            "dataset": {
                "directory": str(dataset.directory),
                "kind": dataset.kind,
                "n_items": dataset.n_items,
            },
            "split": {
                "protocol": result.split.protocol,
                "seed": result.split.seed,
                "description": result.split.description,
            },
            "metrics": result.test_metrics,
            "validation_metrics": result.validation_metrics,
            "config": result.model.describe(),
            "run_id": result.run_id or "",
        },
    )


def pyfunc_signature(default_k: int = DEFAULT_K) -> ModelSignature:
    """Input: ``history`` (item keys) and/or ``user``; output: ``items`` and ``scores``; param k."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import Array

    return ModelSignature(
        inputs=Schema(
            [
                ColSpec(Array(DataType.string), "history", required=False),
                ColSpec(DataType.string, "user", required=False),
            ]
        ),
        outputs=Schema(
            [
                ColSpec(Array(DataType.string), "items"),
                ColSpec(Array(DataType.double), "scores"),
            ]
        ),
        params=ParamSchema([ParamSpec("k", DataType.long, default_k)]),
    )


def input_example(package: ModelPackage) -> pd.DataFrame:
    """A request that makes sense for the package's task: a known user, or two catalogue songs."""
    if package.task == "user-items" and package.user_histories:
        return pd.DataFrame({"user": [next(iter(package.user_histories))]})
    keys = package.items["key"].astype(str).head(2).tolist()
    return pd.DataFrame({"history": [keys]})


def pip_requirements() -> list[str]:
    """Pinned requirements of the serving environment, given explicitly: MLflow's inference of
    them starts a subprocess per model. Segue itself must be installed where the model is served.
    """
    names = list(_BASE_REQUIREMENTS)
    if "torch" in sys.modules:  # a neural scorer was fitted or loaded in this process
        names.append("torch")
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def log_package(package: ModelPackage, *, run_id: str | None = None) -> LoggedPackage:
    """Log ``package`` as one pyfunc model in ``run_id`` (resumed) or in the active run.

    The tracking URI must already point at the store (``registry.open_client`` does that).
    """
    import mlflow

    active = mlflow.active_run()
    if run_id is None and active is None:
        raise ValueError("log_package needs an active MLflow run or a run_id")
    with tempfile.TemporaryDirectory(prefix="segue-package-") as scratch:
        package_dir = package.save(Path(scratch) / PACKAGE_ARTIFACT)
        script = Path(scratch) / "segue_pyfunc.py"
        script.write_text(_ENTRY_SCRIPT, encoding="utf-8")
        resume = run_id is not None and (active is None or active.info.run_id != run_id)
        run = mlflow.start_run(run_id=run_id) if resume else None
        try:
            info = mlflow.pyfunc.log_model(
                name=MODEL_NAME,
                python_model=str(script),
                artifacts={PACKAGE_ARTIFACT: str(package_dir)},
                signature=pyfunc_signature(),
                input_example=input_example(package),
                pip_requirements=pip_requirements(),
            )
            current = mlflow.active_run()
            logged_run = current.info.run_id if current is not None else (run_id or "")
        finally:
            if run is not None:
                mlflow.end_run()
    return LoggedPackage(info.model_uri, logged_run, info.model_id)


def cache_dir(settings: Settings, version: VersionInfo) -> Path:
    """Where one version's download lives: per store (hashed URI), model name and version."""
    from segue.tracking.registry import absolute_store

    tracking = absolute_store(settings).tracking
    store = tracking.registry_uri or tracking.tracking_uri
    digest = hashlib.sha256(store.encode()).hexdigest()[:12]
    return settings.tracking.model_cache_dir / digest / version.name / version.version


def load_registered_package(settings: Settings, version: VersionInfo) -> ModelPackage:
    """The package of a registered version, downloaded once and reused while the source matches.

    A cached copy that no longer loads is removed and fetched again once.
    """
    from segue.tracking.registry import RegistryError

    directory, downloaded = _fetch(settings, version)
    try:
        return _read_package(directory, version)
    except RegistryError:
        if downloaded:
            raise
        shutil.rmtree(cache_dir(settings, version), ignore_errors=True)
        directory, _ = _fetch(settings, version)
        return _read_package(directory, version)


def fetch_package_dir(settings: Settings, version: VersionInfo) -> Path:
    """The local package directory of a registered version, downloaded when not cached."""
    return _fetch(settings, version)[0]


def _fetch(settings: Settings, version: VersionInfo) -> tuple[Path, bool]:
    # A download goes to a scratch folder renamed into place when complete, so a reader never
    # sees half a package.
    target = cache_dir(settings, version)
    downloaded = not _is_cached(target, version)
    if downloaded:
        _download(settings, version, target)
    return target / PACKAGE_SUBDIR, downloaded


def _is_cached(target: Path, version: VersionInfo) -> bool:
    marker = target / _COMPLETE_MARKER
    return marker.exists() and marker.read_text(encoding="utf-8") == version.source


def _download(settings: Settings, version: VersionInfo, target: Path) -> None:
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from segue.tracking.registry import RegistryError, absolute_store, open_client

    client = open_client(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        uri = client.get_model_version_download_uri(version.name, version.version)
        # The model's root folder arrives inside the destination, under its own base name.
        root = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=uri,
                dst_path=str(scratch),
                tracking_uri=absolute_store(settings).tracking.tracking_uri,
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
    from segue.tracking.registry import RegistryError

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
