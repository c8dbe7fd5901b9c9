"""Top-K selection over score matrices, with seen-item exclusion; shared by evaluation and serving.

``top_k`` sorts nothing: one compiled pass over each row (``segue._kernels``) keeps its k best
in a heap and passes over whole blocks of scores that cannot enter it. That is exactly the order
of a full sort by (score descending, item index ascending). It replaced NumPy routes (partition
of small rows, a block-maximum threshold for large ones) that were slower on every shape
measured, in µs a row on scores with a popularity slope: one row of 9,724 items 10 against 142,
4 such rows 9 against 35, 512 rows of 200,000 songs 108 against 258 (``benchmarks/ranking.py``
prints today's figures).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segue._kernels import top_k_rows


def mask_items(
    scores: np.ndarray,
    excluded: Sequence[Sequence[int] | np.ndarray],
    *,
    in_place: bool = False,
) -> np.ndarray:
    """Scores with NaN replaced by -inf and each row's excluded items set to -inf.

    A copy, unless ``in_place`` (float32 scores the caller owns, as the evaluation's are).
    """
    if in_place and scores.dtype == np.float32:
        masked = scores
        np.copyto(masked, -np.inf, where=np.isnan(masked))
    else:
        # fmax takes the number where one side is NaN: one pass that copies and masks.
        masked = np.fmax(scores, -np.inf).astype(np.float32, copy=False)
    rows = [np.asarray(items, dtype=np.int64).reshape(-1) for items in excluded]
    lengths = [len(items) for items in rows]
    if sum(lengths):
        masked[np.repeat(np.arange(len(rows)), lengths), np.concatenate(rows)] = -np.inf
    return masked


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest finite scores per row of float32 ``scores``, best first; -1 pads
    rows with fewer.

    Ties are broken by the lower item index so results are deterministic. NaN counts as -inf.
    """
    ranked = np.empty((scores.shape[0], k), dtype=np.int64)
    top_k_rows(np.ascontiguousarray(scores), ranked)
    return ranked
