"""The champion/challenger gate, and rollback.

The gate compares the challenger with the champion on one metric of known direction. Both must
have been measured on the same evaluation (dataset fingerprint and split protocol); when they were
not, both are re-evaluated on the current split of a dataset the caller names. With no champion
the challenger wins; otherwise it must beat the champion by more than ``min_gain`` (a tie keeps
the champion). The decision, the compared values and the replaced champion are recorded as
version tags, so ``rollback`` can give the alias back.

Concurrency: the decision and the alias move happen under a lock, and the champion alias is
re-read right before it moves; if it changed since the decision, the gate decides again
(compare-and-set). The lock is a PostgreSQL advisory lock when the registry is PostgreSQL (or
``tracking.lock_uri`` names one), else an ``fcntl`` file lock next to a SQLite store. Limits: a
file lock only serialises processes on one host and one file system; against an HTTP tracking
server without ``lock_uri`` only the compare-and-set remains, which narrows the race window to
the gap between the re-read and the alias move but does not close it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from segue.settings import Settings
from segue.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    TAG_PREVIOUS_CHAMPION,
    RegistryError,
    VersionInfo,
    delete_alias,
    get_version,
    model_name,
    set_alias,
    set_tags,
    sqlite_path,
    version_by_alias,
)

log = logging.getLogger(__name__)

TAG_DECISION = "segue.promotion.decision"
TAG_METRIC = "segue.promotion.metric"
TAG_CHALLENGER_VALUE = "segue.promotion.challenger_value"
TAG_CHAMPION_VALUE = "segue.promotion.champion_value"
TAG_CHAMPION_VERSION = "segue.promotion.champion_version"
TAG_EVALUATED_ON = "segue.promotion.evaluated_on"
TAG_MIN_GAIN = "segue.promotion.min_gain"
TAG_DECIDED_AT = "segue.promotion.decided_at"
TAG_ROLLED_BACK_AT = "segue.rolled_back_at"
REGISTERED_METRICS = "registered test metrics"
LOCK_TIMEOUT_SECONDS = 120
_MAX_DECISIONS = 5
# Per-position metrics of the playlist protocol carry this prefix; their direction is the base's.
_LAST_POSITION_PREFIX = "last_"


class PromotionError(RegistryError):
    """The gate cannot decide: no challenger, different evaluations without data, a lock timeout."""


@dataclass(frozen=True)
class PromotionResult:
    """What the gate compared, what it decided, and whether the champion alias moved."""

    name: str
    metric: str
    higher_is_better: bool
    min_gain: float
    challenger: VersionInfo
    champion: VersionInfo | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float]
    evaluated_on: str
    promoted: bool
    reason: str
    dry_run: bool
    moved: bool = False

    @property
    def challenger_value(self) -> float:
        return self.challenger_metrics[self.metric]

    @property
    def champion_value(self) -> float | None:
        return self.champion_metrics.get(self.metric) if self.champion is not None else None


@dataclass(frozen=True)
class RollbackResult:
    name: str
    from_version: str
    to_version: str


@dataclass(frozen=True)
class _Evaluation:
    challenger: dict[str, float]
    champion: dict[str, float] = field(default_factory=dict)
    evaluated_on: str = REGISTERED_METRICS


def metric_direction(metric: str) -> bool:
    """True when higher is better; a clear error for a metric Segue does not know."""
    from segue.evaluation.metrics import higher_is_better

    try:
        return higher_is_better(metric.removeprefix(_LAST_POSITION_PREFIX))
    except KeyError as error:
        raise PromotionError(
            f"unknown metric {metric!r}; use a key such as ndcg_at_10 or recall_at_20"
        ) from error


def decide(
    challenger_value: float, champion_value: float | None, metric: str, min_gain: float
) -> tuple[bool, str]:
    """Promote only when the challenger beats the champion by more than ``min_gain``."""
    if champion_value is None:
        return True, "no champion yet"
    higher = metric_direction(metric)
    gain = challenger_value - champion_value if higher else champion_value - challenger_value
    if gain > min_gain:
        return True, f"challenger better by {gain:.4f} (> min gain {min_gain:g})"
    if gain == 0:
        return False, "tie: the champion stays"
    return False, f"gain {gain:+.4f} is not above min gain {min_gain:g}: the champion stays"


def promote(
    settings: Settings,
    task: str,
    *,
    version: str | None = None,
    metric: str | None = None,
    min_gain: float | None = None,
    dry_run: bool = False,
    data_dir: str | Path | None = None,
) -> PromotionResult:
    """Run the gate for the task's challenger (or ``version``); move ``champion`` if it wins."""
    name = model_name(settings, task)
    metric = metric or settings.tracking.promotion_metric
    min_gain = settings.tracking.promotion_min_gain if min_gain is None else min_gain
    if min_gain < 0:
        raise PromotionError(f"min gain must be >= 0, got {min_gain}")
    metric_direction(metric)
    if dry_run:
        return _decide_once(settings, task, name, version, metric, min_gain, data_dir, True)
    with promotion_lock(settings, name):
        for _ in range(_MAX_DECISIONS):
            result = _decide_once(settings, task, name, version, metric, min_gain, data_dir, False)
            if not result.promoted:
                if result.champion is None or result.champion.version != result.challenger.version:
                    set_tags(settings, name, result.challenger.version, _decision_tags(result))
                return result
            if _holder(settings, name, CHAMPION) != _version_of(result.champion):
                log.info("%s: the champion moved while deciding; deciding again", name)
                continue
            _move_champion(settings, name, result)
            return replace(result, moved=True)
    raise PromotionError(
        f"{name}: the champion kept moving during {_MAX_DECISIONS} decisions; nothing changed"
    )


def rollback(settings: Settings, task: str) -> RollbackResult:
    """Give ``champion`` back to the version the current champion replaced."""
    name = model_name(settings, task)
    with promotion_lock(settings, name):
        champion = version_by_alias(settings, name, CHAMPION)
        if champion is None:
            raise PromotionError(f"{name} has no champion; there is nothing to roll back")
        previous = champion.previous_champion
        if not previous:
            raise PromotionError(
                f"{name} version {champion.version} is champion but replaced no earlier "
                "champion; there is no previous champion to roll back to"
            )
        try:
            get_version(settings, name, previous)
        except RegistryError as error:
            raise PromotionError(
                f"{name}: the previous champion, version {previous}, no longer exists: {error}"
            ) from error
        set_tags(settings, name, champion.version, {TAG_ROLLED_BACK_AT: _now()})
        set_alias(settings, name, CHAMPION, previous)
    return RollbackResult(name, champion.version, previous)


def _decide_once(
    settings: Settings,
    task: str,
    name: str,
    version: str | None,
    metric: str,
    min_gain: float,
    data_dir: str | Path | None,
    dry_run: bool,
) -> PromotionResult:
    challenger = _challenger(settings, name, version)
    champion = version_by_alias(settings, name, CHAMPION)
    higher = metric_direction(metric)
    if champion is not None and champion.version == challenger.version:
        metrics = challenger.metrics
        return PromotionResult(
            name, metric, higher, min_gain, challenger, champion, metrics, metrics,
            REGISTERED_METRICS, False, f"version {challenger.version} is already champion",
            dry_run,
        )  # fmt: skip
    evaluation = _evaluate(settings, task, challenger, champion, metric, data_dir)
    for label, info, values in (
        ("challenger", challenger, evaluation.challenger),
        ("champion", champion, evaluation.champion),
    ):
        if info is not None and metric not in values:
            known = ", ".join(sorted(values)) or "none"
            raise PromotionError(
                f"{name} version {info.version} ({label}) has no metric {metric!r} "
                f"on {evaluation.evaluated_on} (it has: {known})"
            )
    champion_value = evaluation.champion[metric] if champion is not None else None
    promoted, reason = decide(evaluation.challenger[metric], champion_value, metric, min_gain)
    return PromotionResult(
        name, metric, higher, min_gain, challenger, champion, evaluation.challenger,
        evaluation.champion, evaluation.evaluated_on, promoted, reason, dry_run,
    )  # fmt: skip


def _challenger(settings: Settings, name: str, version: str | None) -> VersionInfo:
    if version is not None:
        return get_version(settings, name, version)
    challenger = version_by_alias(settings, name, CHALLENGER)
    if challenger is None:
        raise PromotionError(
            f"{name} has no challenger; register a model first (segue train or segue pipeline run)"
        )
    return challenger


def _same_evaluation(first: VersionInfo, second: VersionInfo) -> bool:
    return bool(first.dataset_fingerprint) and (
        first.dataset_fingerprint == second.dataset_fingerprint
        and first.protocol == second.protocol
    )


def _evaluate(
    settings: Settings,
    task: str,
    challenger: VersionInfo,
    champion: VersionInfo | None,
    metric: str,
    data_dir: str | Path | None,
) -> _Evaluation:
    if champion is None or _same_evaluation(challenger, champion):
        return _Evaluation(challenger.metrics, champion.metrics if champion else {})
    if data_dir is None:
        raise PromotionError(
            f"{challenger.name}: challenger version {challenger.version} "
            f"(dataset {challenger.dataset_fingerprint or '?'}, "
            f"protocol {challenger.protocol or '?'}) and champion version {champion.version} "
            f"(dataset {champion.dataset_fingerprint or '?'}, protocol {champion.protocol or '?'}) "
            "were evaluated differently; pass --data DIR to re-evaluate both on its current split"
        )
    return _reevaluate(settings, task, challenger, champion, Path(data_dir))


def _reevaluate(
    settings: Settings, task: str, challenger: VersionInfo, champion: VersionInfo, data_dir: Path
) -> _Evaluation:
    """Both versions on the test split the challenger's protocol makes of ``data_dir``.

    Items are matched by key, so a version trained on an older catalogue is scored on the current
    one; targets it does not know count as misses. A champion trained on older data may have seen
    some of today's test cases, which can only flatter it: the gate errs towards keeping it.
    """
    from segue.evaluation.protocols import default_protocol
    from segue.tracking.packaging import fetch_package_dir
    from segue.training_job import run_evaluation

    protocol = challenger.protocol or default_protocol(task)
    results = []
    for info in (challenger, champion):
        package_dir = fetch_package_dir(settings, info)
        try:
            evaluation = run_evaluation(
                settings, data_dir, model_dir=package_dir, task=task, protocol=protocol
            )
        except (OSError, ValueError) as error:
            raise PromotionError(
                f"cannot re-evaluate {info.name} version {info.version} on {data_dir}: {error}"
            ) from error
        results.append(evaluation)
    fingerprint = results[0].dataset.fingerprint
    where = f"dataset {fingerprint} ({results[0].protocol} test split, re-evaluated)"
    return _Evaluation(results[0].test_metrics, results[1].test_metrics, where)


def _move_champion(settings: Settings, name: str, result: PromotionResult) -> None:
    # The replaced champion is recorded before the alias moves, so rollback always finds it.
    previous = _version_of(result.champion)
    set_tags(settings, name, result.challenger.version, {TAG_PREVIOUS_CHAMPION: previous})
    set_alias(settings, name, CHAMPION, result.challenger.version)
    set_tags(settings, name, result.challenger.version, _decision_tags(result))
    if _holder(settings, name, CHALLENGER) == result.challenger.version:
        delete_alias(settings, name, CHALLENGER)


def _decision_tags(result: PromotionResult) -> dict[str, str]:
    champion_value = result.champion_value
    return {
        TAG_DECISION: "promoted" if result.promoted else "rejected",
        TAG_METRIC: result.metric,
        TAG_CHALLENGER_VALUE: repr(result.challenger_value),
        TAG_CHAMPION_VALUE: "" if champion_value is None else repr(champion_value),
        TAG_CHAMPION_VERSION: _version_of(result.champion),
        TAG_EVALUATED_ON: result.evaluated_on,
        TAG_MIN_GAIN: repr(result.min_gain),
        TAG_DECIDED_AT: _now(),
    }


def _holder(settings: Settings, name: str, alias: str) -> str:
    return _version_of(version_by_alias(settings, name, alias))


def _version_of(info: VersionInfo | None) -> str:
    return info.version if info is not None else ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def promotion_lock(settings: Settings, name: str) -> Iterator[str]:
    """Serialise gate decisions and alias moves for one registered model; yields the lock kind."""
    store = settings.tracking.registry_uri or settings.tracking.tracking_uri
    postgres = _postgres_dsn(settings.tracking.lock_uri) or _postgres_dsn(store)
    database = sqlite_path(store)
    if postgres is not None:
        with _advisory_lock(postgres, name, settings.tracking.request_timeout_seconds):
            yield "postgresql advisory lock"
    elif database is not None:
        with _file_lock(database.with_name(database.name + ".promotion.lock")):
            yield "file lock"
    elif urlparse(store).scheme in ("", "file"):
        root = Path(urlparse(store).path or store)
        with _file_lock(root / ".promotion.lock"):
            yield "file lock"
    else:
        log.warning(
            "%s: no promotion lock for %s; set tracking.lock_uri to a PostgreSQL URI to "
            "serialise concurrent promotions",
            name,
            store,
        )
        yield "none (compare-and-set only)"


def _postgres_dsn(uri: str) -> str | None:
    """A libpq URI for a ``postgresql[+driver]://`` store URI, else None."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+")[0]
    if scheme not in ("postgresql", "postgres"):
        return None
    return parsed._replace(scheme="postgresql").geturl()


@contextmanager
def _advisory_lock(dsn: str, name: str, connect_timeout: int) -> Iterator[None]:
    import psycopg2

    key = int.from_bytes(hashlib.sha256(f"segue-promotion:{name}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0  # bigint range
    try:
        connection = psycopg2.connect(dsn, connect_timeout=connect_timeout)
    except psycopg2.Error as error:
        raise PromotionError(f"cannot reach the promotion lock database: {error}") from error
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (f"{LOCK_TIMEOUT_SECONDS}s",))
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg2.errors.LockNotAvailable as error:
                raise PromotionError(
                    f"{name}: another promotion held the lock for over {LOCK_TIMEOUT_SECONDS}s"
                ) from error
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
