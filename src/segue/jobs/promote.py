"""The promotion job: run the champion/challenger gate, move the alias, and roll back.

The policy (which metric, which direction, what a tie means) is ``segue.tracking.promotion``;
this job gathers the values to compare, re-evaluating both versions on a dataset the caller names
when their registered metrics were measured differently, and moves the ``champion`` alias.

Concurrency: the decision and the alias move happen under the promotion lock
(``segue.tracking.locks``), and the champion alias is re-read right before it moves; if it
changed since the decision, the gate decides again (compare-and-set).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from segue.evaluation.protocols import default_protocol
from segue.jobs.evaluate import rescore_saved_model
from segue.jobs.train import load_dataset
from segue.settings import Settings
from segue.tracking.locks import promotion_lock
from segue.tracking.package_cache import fetch_package_dir
from segue.tracking.promotion import (
    REGISTERED_METRICS,
    TAG_ROLLED_BACK_AT,
    PromotionError,
    PromotionResult,
    RollbackResult,
    decide,
    decision_tags,
    metric_direction,
    same_evaluation,
    version_of,
)
from segue.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    TAG_PREVIOUS_CHAMPION,
    Registry,
    RegistryError,
    VersionInfo,
    open_registry,
)

log = logging.getLogger(__name__)

_MAX_DECISIONS = 5


@dataclass(frozen=True)
class _Comparison:
    challenger: dict[str, float]
    champion: dict[str, float] = field(default_factory=dict)
    evaluated_on: str = REGISTERED_METRICS


def promote(
    settings: Settings,
    task: str,
    *,
    version: str | None = None,
    metric: str | None = None,
    min_gain: float | None = None,
    dry_run: bool = False,
    data_dir: str | Path | None = None,
    registry: Registry | None = None,
) -> PromotionResult:
    """Run the gate for the task's challenger (or ``version``); move ``champion`` if it wins."""
    registry = registry or open_registry(settings)
    name = registry.registered_name(task)
    metric = metric or settings.tracking.promotion_metric
    min_gain = settings.tracking.promotion_min_gain if min_gain is None else min_gain
    if min_gain < 0:
        raise PromotionError(f"min gain must be >= 0, got {min_gain}")
    metric_direction(metric)
    gate = _Gate(registry, settings, task, name, version, metric, min_gain, data_dir)
    if dry_run:
        return gate.decide(dry_run=True)
    with promotion_lock(registry.settings, name):
        for _ in range(_MAX_DECISIONS):
            result = gate.decide(dry_run=False)
            if not result.promoted:
                if result.champion is None or result.champion.version != result.challenger.version:
                    registry.set_tags(
                        name, result.challenger.version, decision_tags(result, _now())
                    )
                return result
            if registry.holder(name, CHAMPION) != version_of(result.champion):
                log.info("%s: the champion moved while deciding; deciding again", name)
                continue
            _move_champion(registry, name, result)
            return replace(result, moved=True)
    raise PromotionError(
        f"{name}: the champion kept moving during {_MAX_DECISIONS} decisions; nothing changed"
    )


def rollback(settings: Settings, task: str, *, registry: Registry | None = None) -> RollbackResult:
    """Give ``champion`` back to the version the current champion replaced."""
    registry = registry or open_registry(settings)
    name = registry.registered_name(task)
    with promotion_lock(registry.settings, name):
        champion = registry.version_by_alias(name, CHAMPION)
        if champion is None:
            raise PromotionError(f"{name} has no champion; there is nothing to roll back")
        previous = champion.previous_champion
        if not previous:
            raise PromotionError(
                f"{name} version {champion.version} is champion but replaced no earlier "
                "champion; there is no previous champion to roll back to"
            )
        try:
            registry.get_version(name, previous)
        except RegistryError as error:
            raise PromotionError(
                f"{name}: the previous champion, version {previous}, no longer exists: {error}"
            ) from error
        registry.set_tags(name, champion.version, {TAG_ROLLED_BACK_AT: _now()})
        registry.set_alias(name, CHAMPION, previous)
    return RollbackResult(name, champion.version, previous)


@dataclass(frozen=True)
class _Gate:
    """One gate request: which versions to compare, on what, and how to re-evaluate them."""

    registry: Registry
    settings: Settings
    task: str
    name: str
    version: str | None
    metric: str
    min_gain: float
    data_dir: str | Path | None

    def decide(self, *, dry_run: bool) -> PromotionResult:
        challenger = self._challenger()
        champion = self.registry.version_by_alias(self.name, CHAMPION)
        higher = metric_direction(self.metric)
        metric, min_gain = self.metric, self.min_gain
        if champion is not None and champion.version == challenger.version:
            metrics = challenger.metrics
            return PromotionResult(
                self.name, metric, higher, min_gain, challenger, champion, metrics, metrics,
                REGISTERED_METRICS, False, f"version {challenger.version} is already champion",
                dry_run,
            )  # fmt: skip
        comparison = self._compare(challenger, champion)
        for label, info, values in (
            ("challenger", challenger, comparison.challenger),
            ("champion", champion, comparison.champion),
        ):
            if info is not None and metric not in values:
                known = ", ".join(sorted(values)) or "none"
                raise PromotionError(
                    f"{self.name} version {info.version} ({label}) has no metric {metric!r} "
                    f"on {comparison.evaluated_on} (it has: {known})"
                )
        champion_value = comparison.champion[metric] if champion is not None else None
        promoted, reason = decide(comparison.challenger[metric], champion_value, metric, min_gain)
        return PromotionResult(
            self.name, metric, higher, min_gain, challenger, champion, comparison.challenger,
            comparison.champion, comparison.evaluated_on, promoted, reason, dry_run,
        )  # fmt: skip

    def _challenger(self) -> VersionInfo:
        if self.version is not None:
            return self.registry.get_version(self.name, self.version)
        challenger = self.registry.version_by_alias(self.name, CHALLENGER)
        if challenger is None:
            raise PromotionError(
                f"{self.name} has no challenger; register one first with "
                f"`segue train --register --task {self.task}` or `segue pipeline run`"
            )
        return challenger

    def _compare(self, challenger: VersionInfo, champion: VersionInfo | None) -> _Comparison:
        if champion is None or same_evaluation(challenger, champion):
            return _Comparison(challenger.metrics, champion.metrics if champion else {})
        if self.data_dir is None:
            raise PromotionError(
                f"{challenger.name}: challenger version {challenger.version} "
                f"(dataset {challenger.dataset_fingerprint or '?'}, "
                f"protocol {challenger.protocol or '?'}) and champion version {champion.version} "
                f"(dataset {champion.dataset_fingerprint or '?'}, "
                f"protocol {champion.protocol or '?'}) "
                "were evaluated differently; pass --data DIR to re-evaluate both on its current split"
            )
        return self._reevaluate(challenger, champion, Path(self.data_dir))

    def _reevaluate(
        self, challenger: VersionInfo, champion: VersionInfo, data_dir: Path
    ) -> _Comparison:
        """Both versions on the test split the challenger's protocol makes of ``data_dir``.

        A version already evaluated on exactly this dataset and protocol keeps its registered
        metrics: it was refit on all of that dataset before it was registered, so scoring it again
        on the split's test cases would count items it has seen. Any other version is re-scored,
        items matched by key, so a version trained on an older catalogue is scored on the
        current one; targets it does not know count as misses. A champion trained on older data
        may have seen some of today's test cases, which can only flatter it: the gate errs
        towards keeping it.
        """
        protocol = challenger.protocol or default_protocol(self.task)
        fingerprint = load_dataset(data_dir).fingerprint
        metrics = []
        for info in (challenger, champion):
            if info.dataset_fingerprint == fingerprint and info.protocol == protocol:
                metrics.append(info.metrics)
                continue
            package_dir = fetch_package_dir(self.registry, info)
            try:
                rescored = rescore_saved_model(
                    self.settings, data_dir, model_dir=package_dir, task=self.task,
                    protocol=protocol,
                )  # fmt: skip
            except (OSError, ValueError) as error:
                raise PromotionError(
                    f"cannot re-evaluate {info.name} version {info.version} on {data_dir}: {error}"
                ) from error
            metrics.append(rescored.test_metrics)
        where = f"dataset {fingerprint} ({protocol} test split, re-evaluated)"
        return _Comparison(metrics[0], metrics[1], where)


def _move_champion(registry: Registry, name: str, result: PromotionResult) -> None:
    # The replaced champion is recorded before the alias moves, so rollback always finds it.
    challenger = result.challenger.version
    registry.set_tags(name, challenger, {TAG_PREVIOUS_CHAMPION: version_of(result.champion)})
    registry.set_alias(name, CHAMPION, challenger)
    registry.set_tags(name, challenger, decision_tags(result, _now()))
    if registry.holder(name, CHALLENGER) == challenger:
        registry.delete_alias(name, CHALLENGER)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
