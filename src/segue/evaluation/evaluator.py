"""Full-ranking evaluation: score the whole catalogue, exclude the history, compare the top K.

It needs only something that scores (``ItemScorer``), not the model classes, so the shared
trainer below the jobs can early-stop on exactly these metric definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from segue.data.interactions import Holdout, as_history
from segue.evaluation.metrics import (
    LIST_METRICS,
    catalogue_coverage,
    mean_popularity_percentile,
    metric_key,
    popularity_percentiles,
)
from segue.ranking.topk import mask_items, top_k


class ItemScorer(Protocol):
    """What evaluation needs of a model: its name, catalogue size and a batch ``score``."""

    name: str
    n_items: int

    def score(self, histories: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray: ...


def rank_holdout(
    scorer: ItemScorer, holdout: Holdout, k: int, *, batch_size: int = 512, progress: bool = False
) -> list[np.ndarray]:
    """Top-K lists for every case, history items excluded, no sampled negatives."""
    ranked: list[np.ndarray] = []
    starts = range(0, len(holdout), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"evaluating {scorer.name}", unit="batch", leave=False)
    for start in starts:
        histories = [
            as_history(h, scorer.n_items) for h in holdout.histories[start : start + batch_size]
        ]
        scores = scorer.score(histories)
        ranked.extend(top_k(mask_items(scores, histories), k))
    return ranked


def full_ranking_metrics(
    scorer: ItemScorer,
    holdout: Holdout,
    cutoffs: Sequence[int] = (10,),
    *,
    item_counts: np.ndarray | None = None,
    batch_size: int = 512,
    progress: bool = False,
) -> dict[str, float]:
    """Mean of every list metric at every cut-off, plus coverage and popularity percentile.

    ``item_counts`` (training popularity) enables the popularity percentile metric.
    """
    if not len(holdout):
        raise ValueError("cannot evaluate on an empty holdout")
    largest = max(cutoffs)
    ranked = rank_holdout(scorer, holdout, largest, batch_size=batch_size, progress=progress)
    results: dict[str, float] = {}
    percentiles = popularity_percentiles(item_counts) if item_counts is not None else None
    for k in cutoffs:
        for spec in LIST_METRICS:
            values = [spec.function(r, t, k) for r, t in zip(ranked, holdout.targets, strict=True)]
            results[metric_key(spec.name, k)] = float(np.mean(values))
        results[metric_key("coverage", k)] = catalogue_coverage(ranked, scorer.n_items, k)
        if percentiles is not None:
            results[metric_key("popularity_percentile", k)] = mean_popularity_percentile(
                ranked, percentiles, k
            )
    return results
