"""The loaded models, one per task, swapped atomically when the champion moves.

Requests take the current ``ServingModel`` once, at their start, and use that object to the end,
so a swap never changes a model under a request in flight. Loading happens in a worker thread
(start-up, the poller, or the admin route); a failed load keeps the old model serving, is logged,
and is counted in the metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from segue.monitoring.prometheus import ServingMetrics
from segue.serving.matching import MatchBudget
from segue.serving.precomputed import load_precomputed
from segue.serving.recommender import ModelVersion, ServingModel
from segue.tracking.package import ModelPackage

logger = logging.getLogger(__name__)

# (task) -> (version info, package): the champion of a task, loaded. Version info is anything
# ``ModelVersion.from_info`` reads (an MLflow ModelVersion, a mapping, a ModelVersion).
ChampionLoader = Callable[[str], tuple[Any, ModelPackage]]
# (task) -> the champion's version string, or None when the task has no champion. Cheap: it is
# called every poll, and the loader runs only when the answer differs from what is serving.
ChampionProbe = Callable[[str], str | None]

Outcome = Literal["loaded", "unchanged", "failed", "no champion"]


@dataclass(frozen=True)
class ReloadResult:
    task: str
    outcome: Outcome
    version: str | None
    detail: str = ""


class ModelStore:
    """Holds the serving model of each task and replaces it when a new version loads."""

    def __init__(
        self,
        tasks: Iterable[str],
        loader: ChampionLoader,
        *,
        probe: ChampionProbe | None = None,
        fuzzy_threshold: float = 83.0,
        match_budget: MatchBudget | None = None,
        metrics: ServingMetrics | None = None,
        precomputed_dir: Path | None = None,
    ) -> None:
        self.tasks = tuple(tasks)
        self._precomputed_dir = precomputed_dir
        self._loader = loader
        self._probe = probe
        self._fuzzy_threshold = fuzzy_threshold
        self._match_budget = match_budget
        self._metrics = metrics
        self._models: dict[str, ServingModel] = {}
        self._problems: dict[str, str] = {task: "not loaded yet" for task in self.tasks}
        self._refresh_lock = threading.Lock()

    def get(self, task: str) -> ServingModel | None:
        """The model serving ``task`` right now (hold on to it for the whole request)."""
        return self._models.get(task)

    def problem(self, task: str) -> str:
        """Why ``task`` has no model, for 503 answers."""
        if task not in self.tasks:
            return f"task {task!r} is not served by this instance (serving.tasks)"
        return self._problems.get(task, "not loaded yet")

    def loaded(self) -> list[ServingModel]:
        models = self._models
        return [models[task] for task in self.tasks if task in models]

    def refresh(self, *, force: bool = False) -> list[ReloadResult]:
        """Load every task whose champion differs from what serves it (all of them if forced)."""
        with self._refresh_lock:
            return [self._refresh_task(task, force) for task in self.tasks]

    def _refresh_task(self, task: str, force: bool) -> ReloadResult:
        current = self._models.get(task)
        if self._probe is not None and not force:
            try:
                champion = self._probe(task)
            except Exception as error:
                return self._failed(task, current, f"cannot read the champion alias: {error}")
            if champion is None:
                if current is None:
                    self._problems[task] = "no champion registered for this task"
                return ReloadResult(task, "no champion", _version_of(current))
            if current is not None and champion == current.version.version:
                return ReloadResult(task, "unchanged", champion)
        try:
            info, package = self._loader(task)
            version = ModelVersion.from_info(info)
            if current is not None and version == current.version and not force:
                return ReloadResult(task, "unchanged", version.version)
            model = ServingModel(task, version, package, self._fuzzy_threshold, self._match_budget)
            model.precomputed = load_precomputed(
                self._precomputed_dir, task, version.name, version.version, model.keys
            )
        except Exception as error:
            return self._failed(task, current, str(error))
        self._swap(task, model)
        logger.info("%s: serving %s version %s", task, version.name, version.version)
        return ReloadResult(task, "loaded", version.version)

    def _swap(self, task: str, model: ServingModel) -> None:
        # A new dict, assigned in one step: readers see either the old mapping or the new one.
        self._models = {**self._models, task: model}
        self._problems.pop(task, None)
        if self._metrics is not None:
            self._metrics.record_reload(
                task, model.version.name, model.version.version, model.algorithm
            )

    def _failed(self, task: str, current: ServingModel | None, detail: str) -> ReloadResult:
        if current is None:
            self._problems[task] = f"no model could be loaded: {detail}"
            logger.warning("%s: no model loaded: %s", task, detail)
        else:
            logger.error(
                "%s: reload failed, still serving version %s: %s",
                task,
                current.version.version,
                detail,
            )
        if self._metrics is not None:
            self._metrics.record_failed_reload(task)
        return ReloadResult(task, "failed", _version_of(current), detail)


def _version_of(model: ServingModel | None) -> str | None:
    return None if model is None else model.version.version
