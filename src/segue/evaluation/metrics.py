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

Output-health aggregates, over the lists actually served (the monitoring report):

- Exposure Gini = Gini coefficient of how often each catalogue item was shown (items never shown
  count as 0): 0 when every item is shown equally often, (n - 1) / n when one item takes all.
- Novelty = mean self-information -log2 p(i) of the shown items, with p(i) = (count(i) + 1) /
  (total count + number of items), the item's smoothed share of the training interactions.
- Personalization = 1 - mean over pairs of lists of |A and B| / K (K the cut-off): 0 when every
  list is the same, 1 when no two lists share an item.
- Intra-list artist diversity = share of pairs of items in one list whose artists differ.
- Artist concentration = share of one list taken by its most frequent artist.
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


def exposure_counts(ranked_lists: Sequence[np.ndarray], n_items: int, k: int) -> np.ndarray:
    """How many times each catalogue item appears in the top K of ``ranked_lists``."""
    if not ranked_lists:
        return np.zeros(n_items, dtype=np.int64)
    shown = np.concatenate([np.asarray(r[:k], dtype=np.int64) for r in ranked_lists])
    return np.bincount(shown[(shown >= 0) & (shown < n_items)], minlength=n_items)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative ``counts``: 0 for equal counts; 0 when all are 0."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(values), float(values.sum())
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(2 * (ranks * values).sum() / (n * total) - (n + 1) / n)


def lorenz_curve(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative share of items (least exposed first) against their cumulative share of
    exposure, both starting at 0: the exposure concentration curve."""
    values = np.sort(np.asarray(counts, dtype=np.float64))
    total = float(values.sum())
    items = np.arange(len(values) + 1) / max(len(values), 1)
    exposure = np.concatenate([[0.0], np.cumsum(values) / total]) if total else items.copy()
    return items, exposure


def novelty(ranked_lists: Sequence[np.ndarray], counts: np.ndarray, k: int) -> float:
    """Mean self-information (bits) of every shown item against the training popularity."""
    if not ranked_lists:
        return 0.0
    counts = np.asarray(counts, dtype=np.float64)
    shown = np.concatenate([np.asarray(r[:k], dtype=np.int64) for r in ranked_lists])
    shown = shown[(shown >= 0) & (shown < len(counts))]
    if not len(shown):
        return 0.0
    probabilities = (counts[shown] + 1.0) / (counts.sum() + len(counts))
    return float(-np.log2(probabilities).mean())


def personalization(ranked_lists: Sequence[np.ndarray], k: int) -> float:
    """1 - mean pairwise overlap of the top-K lists, each overlap divided by K.

    Exact over every pair without building the pairs: the shared items of all pairs sum to
    (sum over items of c^2 - sum of list sizes) / 2, where c counts the lists showing the item.
    """
    lists = [np.unique(np.asarray(r[:k], dtype=np.int64)) for r in ranked_lists]
    lists = [items[items >= 0] for items in lists]
    n = len(lists)
    if n < 2:
        return 0.0
    flat = np.concatenate(lists)
    _, per_item = np.unique(flat, return_counts=True)
    shared = (float((per_item.astype(np.float64) ** 2).sum()) - len(flat)) / 2
    mean_overlap = shared / (n * (n - 1) / 2) / k
    return float(1.0 - mean_overlap)


def intra_list_diversity(artists: Sequence[str]) -> float:
    """Share of pairs of items in one list by different artists (1 for a list of one item)."""
    n = len(artists)
    if n < 2:
        return 1.0
    _, counts = np.unique(np.asarray(artists, dtype=object).astype(str), return_counts=True)
    same = float((counts * (counts - 1)).sum())
    return 1.0 - same / (n * (n - 1))


def artist_concentration(artists: Sequence[str]) -> float:
    """Share of one list taken by its most frequent artist (0 for an empty list)."""
    if not len(artists):
        return 0.0
    _, counts = np.unique(np.asarray(artists, dtype=object).astype(str), return_counts=True)
    return float(counts.max() / len(artists))
