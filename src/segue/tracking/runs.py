"""MLflow run tracking: open the configured store, record a training run, find a run's saved model.

Everything goes through one ``MlflowClient`` bound to the configured URIs, never through MLflow's
process-global "active run", so library code holds no hidden state and two stores can be used
side by side (tests, or a benchmark next to a service). Metrics of a run are sent in one batch:
logging a run costs a few database writes, not one per value.

Metric names in a run:
    ``loss``, ``val_ndcg_at_10``, ...     per epoch (step = epoch), from ``Scorer.training_history``
    ``validation_ndcg_at_10``, ...        the fitted model on the full validation cases
    ``ndcg_at_10``, ``last_ndcg_at_10``   the fitted model on the test cases
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue.models.base import ARRAYS_FILE, CONFIG_FILE
from segue.settings import Settings
from segue.tracking.stores import artifact_location, registry_uri, tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

VALIDATION_PREFIX = "validation_"
PARENT_RUN_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
_MAX_PARAM_LENGTH = 6000
_BATCH_LIMIT = 900  # MLflow accepts at most 1000 metrics per batch


class TrackingError(RuntimeError):
    """The tracking store cannot be opened, or a run lacks what was asked of it."""


@dataclass(frozen=True)
class TrackingStore:
    """A client bound to the configured tracking store and Segue's experiment in it."""

    client: MlflowClient
    experiment_id: str
    tracking_uri: str

    def start_run(
        self,
        run_name: str,
        tags: Mapping[str, str] | None = None,
        *,
        parent_run_id: str | None = None,
    ) -> str:
        """A new run (nested under ``parent_run_id`` when given); returns its id."""
        all_tags = {RUN_NAME_TAG: run_name, **(tags or {})}
        if parent_run_id:
            all_tags[PARENT_RUN_TAG] = parent_run_id
        run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=run_name)
        return run.info.run_id

    def finish_run(self, run_id: str, *, failed: bool = False) -> None:
        self.client.set_terminated(run_id, "FAILED" if failed else "FINISHED")

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], *, step: int = 0, prefix: str = ""
    ) -> None:
        from mlflow.entities import Metric

        now = _now_ms()
        self._log_metric_entities(
            run_id,
            [Metric(prefix + key, float(value), now, step) for key, value in metrics.items()],
        )

    def log_history(self, run_id: str, history: list[dict[str, float]]) -> None:
        """Per-epoch records ({"epoch", "loss", "val_*"}) as metrics with step = epoch."""
        from mlflow.entities import Metric

        now = _now_ms()
        entities = [
            Metric(key, float(value), now, int(record.get("epoch", index + 1)))
            for index, record in enumerate(history)
            for key, value in record.items()
            if key != "epoch"
        ]
        self._log_metric_entities(run_id, entities)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        entities = [Param(key, _param_value(value)) for key, value in params.items()]
        for start in range(0, len(entities), 100):
            self.client.log_batch(run_id, params=entities[start : start + 100])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, _param_value(v)) for k, v in tags.items()])

    def log_artifacts(self, run_id: str, directory: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(run_id, str(directory), artifact_path)

    def log_file(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def _log_metric_entities(self, run_id: str, entities: list[Any]) -> None:
        for start in range(0, len(entities), _BATCH_LIMIT):
            self.client.log_batch(run_id, metrics=entities[start : start + _BATCH_LIMIT])

    # -- reading back -------------------------------------------------------------------------
    def run_tags(self, run_id: str) -> dict[str, str]:
        try:
            return dict(self.client.get_run(run_id).data.tags)
        except Exception as error:  # MLflow raises its own exception types per store
            raise TrackingError(f"run {run_id!r} not found in {self.tracking_uri}") from error

    def download_saved_model(self, run_id: str, destination: Path) -> Path:
        """The directory of a model saved by ``Scorer.save`` among the run's artifacts.

        Looks in the run's own artifacts, then in models logged from the run (MLflow 3
        "logged models"), for a directory holding ``model.json`` and ``arrays.npz``.
        """
        self.run_tags(run_id)  # a clear error for an unknown run
        found = _find_artifact_dir(self.client, run_id, {CONFIG_FILE, ARRAYS_FILE})
        if found is not None:
            local = self.client.download_artifacts(run_id, found, str(destination))
            return Path(local)
        return self._download_from_logged_models(run_id, destination)

    def _download_from_logged_models(self, run_id: str, destination: Path) -> Path:
        from mlflow.artifacts import download_artifacts

        models = self.client.search_logged_models(
            [self.experiment_id], filter_string=f"source_run_id = '{run_id}'"
        )
        for logged in models:
            local = Path(
                download_artifacts(
                    artifact_uri=logged.artifact_location,
                    dst_path=str(destination),
                    tracking_uri=self.tracking_uri,
                )
            )
            for config in sorted(local.rglob(CONFIG_FILE)):
                return config.parent
        raise TrackingError(f"run {run_id} has no saved model among its artifacts")


def _find_artifact_dir(
    client: MlflowClient, run_id: str, required: set[str], path: str | None = None, depth: int = 0
) -> str | None:
    entries = client.list_artifacts(run_id, path)
    names = {Path(entry.path).name for entry in entries if not entry.is_dir}
    if required <= names:
        return path or ""
    if depth >= 3:
        return None
    for entry in entries:
        if entry.is_dir:
            found = _find_artifact_dir(client, run_id, required, entry.path, depth + 1)
            if found is not None:
                return found
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:_MAX_PARAM_LENGTH]


def open_tracking(settings: Settings) -> TrackingStore:
    """The configured tracking store, with Segue's experiment created on first use."""
    from mlflow import MlflowClient

    uri = tracking_uri(settings)
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=registry_uri(settings))
        experiment = client.get_experiment_by_name(settings.tracking.experiment)
        if experiment is not None:
            return TrackingStore(client, experiment.experiment_id, uri)
        experiment_id = _create_experiment(client, settings)
    except Exception as error:  # connection, permission and schema errors come in many types
        raise TrackingError(f"cannot open the tracking store {uri}: {error}") from error
    return TrackingStore(client, experiment_id, uri)


def _create_experiment(client: MlflowClient, settings: Settings) -> str:
    name = settings.tracking.experiment
    try:
        return client.create_experiment(name, artifact_location=artifact_location(settings))
    except Exception:
        # Another process may have created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
