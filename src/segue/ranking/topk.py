"""Top-K selection over score rows, with excluded and banned items; shared by evaluation and serving.

``top_k`` sorts nothing: one compiled pass over each row (``segue._kernels``) keeps its k best
in a heap, passes over whole blocks of scores that cannot enter it and looks up exclusions only
for the few items that could (no masked copy of the row). That is exactly the order
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


def top_k(
    scores: np.ndarray,
    k: int,
    excluded: Sequence[Sequence[int] | np.ndarray] | None = None,
    banned: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the k highest finite scores per row of ``scores``, best first; -1 pads rows
    with fewer. Row r's ``excluded`` items and the items of the ``banned`` mask are left out.

    Ties are broken by the lower item index so results are deterministic. NaN counts as -inf.
    """
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    rows = [
        np.unique(np.asarray(items, dtype=np.int64).reshape(-1))
        for items in (excluded if excluded is not None else [()] * len(scores))
    ]
    if len(rows) != len(scores):
        raise ValueError(f"{len(rows)} exclusion lists for {len(scores)} rows of scores")
    bounds = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(items) for items in rows], out=bounds[1:])
    skip = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    ranked = np.empty((len(scores), k), dtype=np.int64)
    top_k_rows(scores, ranked, skip, bounds, banned)
    return ranked
