"""Ranking metrics as pure per-list functions.

Each takes ``ranked`` (item indices, best first; -1 marks an empty slot) and ``relevant`` (the
held-out items) and a cut-off ``k``. Definitions:

- Precision@K = hits in the top K / K.
- Recall@K = hits in the top K / number of relevant items. With 10 held-out items and K=10 this is
  the original design's HIT (hits divided by the number of held-out items).
- F1@K = harmonic mean of Precision@K and Recall@K (0 when both are 0).
- HitRate@K = 1 when at least one relevant item is in the top K, else 0.
- NDCG@K = DCG / ideal DCG with binary gains and log2(rank + 1) discounts; the ideal list puts
  min(K, number relevant) hits first.
- MRR@K = 1 / rank of the first relevant item in the top K, else 0.

List-level aggregates (coverage, popularity percentile) are over all lists of an evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

ListMetric = Callable[[np.ndarray, np.ndarray, int], float]


def _hits(ranked: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    top = np.asarray(ranked[:k])
    return np.isin(top, relevant) & (top >= 0)


def precision_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    return float(_hits(ranked, relevant, k).sum() / k)


def recall_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    n_relevant = len(np.unique(relevant))
    return float(_hits(ranked, relevant, k).sum() / n_relevant) if n_relevant else 0.0


def f1_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    precision = precision_at_k(ranked, relevant, k)
    recall = recall_at_k(ranked, relevant, k)
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


def hit_rate_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    return float(_hits(ranked, relevant, k).any())


def ndcg_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    hits = _hits(ranked, relevant, k)
    n_relevant = len(np.unique(relevant))
    if not n_relevant:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float((hits * discounts[: len(hits)]).sum())
    ideal = float(discounts[: min(k, n_relevant)].sum())
    return dcg / ideal


def mrr_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    positions = np.flatnonzero(_hits(ranked, relevant, k))
    return 1.0 / (positions[0] + 1) if len(positions) else 0.0


@dataclass(frozen=True)
class MetricSpec:
    """A named per-list metric and whether higher is better."""

    name: str
    function: ListMetric
    higher_is_better: bool = True


LIST_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("precision", precision_at_k),
    MetricSpec("recall", recall_at_k),
    MetricSpec("f1", f1_at_k),
    MetricSpec("hit_rate", hit_rate_at_k),
    MetricSpec("ndcg", ndcg_at_k),
    MetricSpec("mrr", mrr_at_k),
)

# Aggregates: coverage is higher-better; a lower popularity percentile means less popular picks,
# which is reported, not optimised, so it has no preferred direction in promotion.
METRIC_DIRECTIONS: dict[str, bool] = {
    **{spec.name: spec.higher_is_better for spec in LIST_METRICS},
    "coverage": True,
    "popularity_percentile": False,
}


def metric_key(name: str, k: int) -> str:
    """MLflow-safe metric name, e.g. ``ndcg_at_10`` (MLflow forbids ``@``)."""
    return f"{name}_at_{k}"


def higher_is_better(key: str) -> bool:
    """Direction of a metric key such as ``ndcg_at_10`` or ``loss``."""
    base = key.split("_at_")[0]
    if base in METRIC_DIRECTIONS:
        return METRIC_DIRECTIONS[base]
    if base.endswith("loss"):
        return False
    raise KeyError(f"unknown metric {key!r}")


def catalogue_coverage(ranked_lists: Sequence[np.ndarray], n_items: int, k: int) -> float:
    """Share of the catalogue that appears in at least one top-K list."""
    if not ranked_lists or n_items <= 0:
        return 0.0
    shown = np.concatenate([np.asarray(r[:k]) for r in ranked_lists])
    return float(len(np.unique(shown[shown >= 0])) / n_items)


def popularity_percentiles(counts: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in [0, 1] (1 = the most popular), ties averaged."""
    from scipy.stats import rankdata

    if len(counts) <= 1:
        return np.ones(len(counts))
    return (rankdata(counts, method="average") - 1) / (len(counts) - 1)


def mean_popularity_percentile(
    ranked_lists: Sequence[np.ndarray], percentiles: np.ndarray, k: int
) -> float:
    """Mean popularity percentile of every recommended item (lower = more long-tail)."""
    if not ranked_lists:
        return 0.0
    shown = np.concatenate([np.asarray(r[:k]) for r in ranked_lists])
    shown = shown[shown >= 0]
    return float(percentiles[shown].mean()) if len(shown) else 0.0
