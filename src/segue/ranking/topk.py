"""Top-K selection over score matrices, with seen-item exclusion; shared by evaluation and serving."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mask_items(scores: np.ndarray, excluded: Sequence[np.ndarray]) -> np.ndarray:
    """Scores with NaN replaced by -inf and each row's excluded items set to -inf (a copy)."""
    masked = np.where(np.isnan(scores), -np.inf, scores).astype(np.float32, copy=False)
    for row, items in enumerate(excluded):
        if len(items):
            masked[row, items] = -np.inf
    return masked


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest finite scores per row, best first; -1 pads rows with fewer.

    Ties are broken by the lower item index so results are deterministic.
    """
    n_rows, n_items = scores.shape
    k_eff = min(k, n_items)
    if k_eff <= 0:
        return np.full((n_rows, k), -1, dtype=np.int64)
    if k_eff < n_items:
        candidates = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
        _settle_boundary_ties(scores, candidates)
    else:
        candidates = np.tile(np.arange(n_items), (n_rows, 1))
    candidate_scores = np.take_along_axis(scores, candidates, axis=1)
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    ranked = np.take_along_axis(candidates, order, axis=1)
    ranked_scores = np.take_along_axis(candidate_scores, order, axis=1)
    ranked = np.where(np.isfinite(ranked_scores), ranked, -1)
    if k_eff < k:
        ranked = np.pad(ranked, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return ranked.astype(np.int64)


def _settle_boundary_ties(scores: np.ndarray, candidates: np.ndarray) -> None:
    """Where items tie at the k-th score, keep the lowest indices (argpartition picks any)."""
    k = candidates.shape[1]
    boundary = np.take_along_axis(scores, candidates, axis=1).min(axis=1)
    tied_in_row = (scores == boundary[:, None]).sum(axis=1)
    tied_kept = (np.take_along_axis(scores, candidates, axis=1) == boundary[:, None]).sum(axis=1)
    for row in np.flatnonzero(tied_in_row > tied_kept):
        above = np.flatnonzero(scores[row] > boundary[row])
        tied = np.flatnonzero(scores[row] == boundary[row])[: k - len(above)]
        candidates[row] = np.concatenate([above, tied])
