"""A ModelPackage as one MLflow pyfunc model: the model class and how it is logged.

The logged model holds the package directory as its artifact ``package`` (arrays, vocabularies,
catalogue with artists and titles, config, dataset fingerprint, split and metrics), so nothing
from training is needed to serve it.
``mlflow.pyfunc.load_model(uri).predict(frame, params={"k": 10})`` takes a DataFrame with a
``history`` column (lists of item keys) and/or a ``user`` column (known user ids), and returns a
DataFrame of ``items`` (top-k keys) and ``scores``. The lists go through the same ranking as the
Segue server (``segue.ranking.postprocess``: exclusions, seen items, the ban list and the
per-artist cap and re-rank of the ``serving`` settings, read when the model loads), so
``mlflow models serve --env-manager local`` answers with the same list as ``segue serve`` for the
same history, in an environment where Segue is installed.

The model is logged from code (a two-line script that builds ``SeguePyfuncModel``), so loading it
unpickles nothing. The Segue server itself does not go through pyfunc: it downloads the package
(``segue.tracking.package_cache``) and loads it directly.
"""

from __future__ import annotations

import importlib.metadata
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import Array

from segue.ranking.ban_list import EMPTY_BAN_LIST, BanList, BanListFile
from segue.ranking.postprocess import PostProcessConfig, RankingCatalogue, rank_lists
from segue.settings import Settings, load_settings
from segue.tracking.package import ModelPackage, ranking_catalogue

LOGGED_MODEL_NAME = "model"  # the artifact path of the pyfunc model inside its run
PACKAGE_ARTIFACT = "package"
DEFAULT_K = 10
_ENTRY_SCRIPT = (
    "from mlflow.models import set_model\n"
    "from segue.tracking.pyfunc import SeguePyfuncModel\n"
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
    """Top-k recommendations from a Segue package for MLflow's generic pyfunc interface.

    Ranks like ``ServingModel``: a history with no known item, or one the model cannot score,
    falls back to popularity; the history itself is excluded; then the ban list, the re-rank
    and the per-artist cap of the settings.
    """

    def load_context(self, context: Any) -> None:
        self.prepare(ModelPackage.load(context.artifacts[PACKAGE_ARTIFACT]), load_settings())

    def prepare(
        self, package: ModelPackage, settings: Settings, ban_list: BanList | None = None
    ) -> None:
        """Build the indexes ranking needs; ``ban_list`` defaults to ``serving.ban_list_file``."""
        self.package = package
        self.catalogue: RankingCatalogue = ranking_catalogue(package)
        self.keys = np.asarray(self.catalogue.keys, dtype=object)
        self.index_of = {str(key): index for index, key in enumerate(self.keys)}
        self.config = PostProcessConfig.from_settings(settings.serving)
        if ban_list is None:
            source = settings.serving.ban_list_file
            ban_list = BanListFile(source).current() if source is not None else EMPTY_BAN_LIST
        self.ban_list = ban_list

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
        scores = self._scores(cases)
        ranked = rank_lists(
            scores, [k] * len(cases), self.catalogue, cases, ban_list=self.ban_list,
            config=self.config,
        )  # fmt: skip
        return pd.DataFrame(
            {
                "items": [[str(self.keys[entry.item]) for entry in row] for row in ranked],
                "scores": [[entry.score for entry in row] for row in ranked],
            }
        )

    def _scores(self, cases: list[np.ndarray]) -> np.ndarray:
        rows: list[np.ndarray | None] = [None] * len(cases)
        known = [row for row, case in enumerate(cases) if len(case)]
        if known:
            scored = self.package.scorer.score([cases[row] for row in known])
            for row, values in zip(known, scored, strict=True):
                rows[row] = values
        return np.stack(
            [
                values if values is not None and np.isfinite(values).any()
                else self.catalogue.popularity
                for values in rows
            ]
        )  # fmt: skip

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


def pyfunc_signature(default_k: int = DEFAULT_K) -> ModelSignature:
    """Input: ``history`` (item keys) and/or ``user``; output: ``items`` and ``scores``; param k."""
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

    The tracking URI must already point at the store (``registry.open_registry`` does that).
    """
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
                name=LOGGED_MODEL_NAME,
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
