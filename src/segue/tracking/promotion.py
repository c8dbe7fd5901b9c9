"""The champion/challenger gate's policy, as pure functions: what is compared and who wins.

The gate compares the challenger with the champion on one metric of known direction. Both must
have been measured on the same evaluation (dataset fingerprint and split protocol); when they were
not, the promotion job (``segue.jobs.promote``) re-evaluates both. With no champion the challenger
wins; otherwise it must beat the champion by more than ``min_gain``, and a tie keeps the champion.
The decision and the compared values are recorded as version tags (``decision_tags``).
"""

from __future__ import annotations

from dataclasses import dataclass

from segue.evaluation.metrics import higher_is_better
from segue.tracking.registry import RegistryError, VersionInfo

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
# Per-position metrics of the playlist protocol carry this prefix; their direction is the base's.
_LAST_POSITION_PREFIX = "last_"


class PromotionError(RegistryError):
    """The gate cannot decide: no challenger, different evaluations without data, a lock timeout."""


@dataclass(frozen=True)
class PromotionResult:
    """What the gate compared, what it decided, and whether the champion alias moved."""

    name: str  # the registered name
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
    name: str  # the registered name
    from_version: str
    to_version: str


def metric_direction(metric: str) -> bool:
    """True when higher is better; a clear error for a metric Segue does not know."""
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


def same_evaluation(first: VersionInfo, second: VersionInfo) -> bool:
    """Whether two versions' registered metrics are comparable: same dataset and protocol."""
    return bool(first.dataset_fingerprint) and (
        first.dataset_fingerprint == second.dataset_fingerprint
        and first.protocol == second.protocol
    )


def version_of(info: VersionInfo | None) -> str:
    """A version number, "" for none (how tags record "no champion")."""
    return info.version if info is not None else ""


def decision_tags(result: PromotionResult, decided_at: str) -> dict[str, str]:
    """The version tags recording one gate decision."""
    champion_value = result.champion_value
    return {
        TAG_DECISION: "promoted" if result.promoted else "rejected",
        TAG_METRIC: result.metric,
        TAG_CHALLENGER_VALUE: repr(result.challenger_value),
        TAG_CHAMPION_VALUE: "" if champion_value is None else repr(champion_value),
        TAG_CHAMPION_VERSION: version_of(result.champion),
        TAG_EVALUATED_ON: result.evaluated_on,
        TAG_MIN_GAIN: repr(result.min_gain),
        TAG_DECIDED_AT: decided_at,
    }


def gate_status(tags: dict[str, str]) -> str:
    """The last decision recorded on a version, with ", rolled back" when a rollback followed."""
    decision = tags.get(TAG_DECISION, "")
    # ISO timestamps compare as text: a rollback after the last decision is still in force.
    if tags.get(TAG_ROLLED_BACK_AT, "") >= tags.get(TAG_DECIDED_AT, "\uffff"):
        return f"{decision}, rolled back"
    return decision
