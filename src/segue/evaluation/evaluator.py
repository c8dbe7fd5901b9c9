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
from segue.ranking.topk import top_k

# Most scores one batch holds (32 MB of float32): up to ~15,600 items a batch is the full 512
# cases; at 200k songs, 40. Arrays this size are reused by the allocator instead of being mapped
# and faulted in afresh for every batch, which cost a quarter of the evaluation's CPU there.
SCORES_PER_BATCH = 8_000_000


class ItemScorer(Protocol):
    """What evaluation needs of a model: its name, catalogue size and a batch ``score`` that
    returns a fresh float32 array (evaluation masks it in place)."""

    name: str
    n_items: int

    def score(self, histories: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray: ...


def rank_holdout(
    scorer: ItemScorer, holdout: Holdout, k: int, *, batch_size: int = 512, progress: bool = False
) -> list[np.ndarray]:
    """Top-K lists for every case, history items excluded, no sampled negatives.

    Cases are scored ``batch_size`` at a time (fewer on catalogues so large that a batch's
    scores would pass ``SCORES_PER_BATCH``), one model call per batch, and each batch's top K
    is one vectorised selection (no sort of the catalogue). ``progress`` shows a bar with the
    cases done and the time left.
    """
    batch_size = max(1, min(batch_size, SCORES_PER_BATCH // max(scorer.n_items, 1)))
    ranked: list[np.ndarray] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(holdout), desc=f"evaluating {scorer.name}", unit="case", leave=False)
    try:
        for start in range(0, len(holdout), batch_size):
            histories = [
                as_history(h, scorer.n_items) for h in holdout.histories[start : start + batch_size]
            ]
            ranked.extend(top_k(scorer.score(histories), k, histories))
            if bar is not None:
                bar.update(len(histories))
    finally:
        if bar is not None:
            bar.close()
    return ranked


def ranked_list_metrics(
    ranked: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    cutoffs: Sequence[int],
    n_items: int,
    *,
    item_counts: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean of every list metric at every cut-off over lists already ranked, plus coverage and
    (with ``item_counts``, the training popularity) the popularity percentile."""
    results: dict[str, float] = {}
    percentiles = popularity_percentiles(item_counts) if item_counts is not None else None
    for k in cutoffs:
        for spec in LIST_METRICS:
            values = [spec.function(r, t, k) for r, t in zip(ranked, targets, strict=True)]
            results[metric_key(spec.name, k)] = float(np.mean(values))
        results[metric_key("coverage", k)] = catalogue_coverage(ranked, n_items, k)
        if percentiles is not None:
            results[metric_key("popularity_percentile", k)] = mean_popularity_percentile(
                ranked, percentiles, k
            )
    return results


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
    ranked = rank_holdout(scorer, holdout, max(cutoffs), batch_size=batch_size, progress=progress)
    return ranked_list_metrics(
        ranked, holdout.targets, cutoffs, scorer.n_items, item_counts=item_counts
    )
