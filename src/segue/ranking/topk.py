"""Top-K selection over score matrices, with seen-item exclusion; shared by evaluation and serving.

Neither function sorts the catalogue. On large score matrices ``top_k`` first finds, per row, a
score that at least k items reach (the k-th largest of the row's block maxima), keeps every item
at or above it, and sorts only those few; small ones partition each row around its k-th score.
Both give exactly the order of a full sort by (score descending, item index ascending).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Rows handled at once: bounds the scratch (a boolean or int64 array of rows x items) to ~8-64
# MB on large catalogues (evaluation scores 512 rows of 200k songs at a time).
_CHUNK_ENTRIES = 8_000_000
# The threshold route splits a row into this many blocks (at least 2k) and needs blocks of at
# least _MIN_BLOCK items, and this many scores in all, to beat a partition of each row (measured:
# one row of 9,724 items partitions faster, 8 such rows or one of 182,000 items do not).
_BLOCKS = 64
_MIN_BLOCK = 32
_THRESHOLD_ROUTE_ENTRIES = 32_768
# A row whose threshold lets more than this share of the catalogue through (ties, -inf) is
# partitioned instead.
_MAX_CANDIDATE_SHARE = 0.25
# Items tied at the threshold are looked for in this many leading items of a row first.
_TIE_PREFIX = 4096


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
    """Indices of the k highest finite scores per row, best first; -1 pads rows with fewer.

    Ties are broken by the lower item index so results are deterministic. NaN counts as -inf.
    """
    n_rows, n_items = scores.shape
    k_eff = min(k, n_items)
    if k_eff <= 0:
        return np.full((n_rows, k), -1, dtype=np.int64)
    step = max(1, _CHUNK_ENTRIES // max(n_items, 1))
    parts = []
    for start in range(0, n_rows, step):
        chunk = scores[start : start + step]
        blocks = max(_BLOCKS, 2 * k_eff)
        if n_items >= blocks * _MIN_BLOCK and chunk.size >= _THRESHOLD_ROUTE_ENTRIES:
            parts.append(_top_k_above_threshold(chunk, k_eff, blocks))
        else:
            parts.append(_top_k_by_partition(chunk, k_eff))
    ranked = np.concatenate(parts) if parts else np.empty((0, k_eff), dtype=np.int64)
    if k_eff < k:
        ranked = np.pad(ranked, ((0, 0), (0, k - k_eff)), constant_values=-1)
    return ranked


def _top_k_by_partition(scores: np.ndarray, k: int) -> np.ndarray:
    """Partition each row around its (k+1)-th score, then sort only the k+1 above it."""
    n_rows, n_items = scores.shape
    scores = np.where(np.isnan(scores), -np.inf, scores) if np.isnan(scores).any() else scores
    rows = np.arange(n_rows)[:, None]
    if k < n_items:
        # The k+1 largest end up last (partitioning the scores themselves spares a negated
        # copy); sorted, the (k+1)-th tells whether an item left out ties with the k-th.
        candidates = np.argpartition(scores, n_items - k - 1, axis=1)[:, n_items - k - 1 :]
    else:
        candidates = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    candidate_scores = scores[rows, candidates]
    order = np.lexsort((candidates, -candidate_scores), axis=1)
    ranked = candidates[rows, order][:, :k]
    ranked_scores = candidate_scores[rows, order]
    if k < n_items:
        _settle_boundary_ties(scores, ranked, ranked_scores[:, k - 1], ranked_scores[:, k])
    ranked = np.where(np.isfinite(scores[rows, ranked]), ranked, -1)
    return ranked.astype(np.int64, copy=False)


def _settle_boundary_ties(
    scores: np.ndarray, ranked: np.ndarray, boundary: np.ndarray, best_left: np.ndarray
) -> None:
    """Where items tie at the k-th score, keep the lowest indices (argpartition picks any).

    ``ranked`` holds each row's k best candidates in order, the k-th scoring ``boundary``;
    ``best_left`` is the best score left out: only where it equals the k-th can an item left
    out tie with the kept ones. Such rows are ranked again from the whole row.
    """
    k = ranked.shape[1]
    for row in np.flatnonzero(best_left == boundary):
        above = np.flatnonzero(scores[row] > boundary[row])
        above = above[np.lexsort((above, -scores[row, above]))]
        tied = np.flatnonzero(scores[row] == boundary[row])[: k - len(above)]
        ranked[row] = np.concatenate([above, tied])


def _top_k_above_threshold(scores: np.ndarray, k: int, blocks: int) -> np.ndarray:
    """Exact top k of rows of a large catalogue without partitioning whole rows.

    With the row cut into ``blocks`` blocks, at least k items score at or above t, the k-th
    largest block maximum, and so does every item of the true top k. When k items or more
    score above t, the top k is among them; otherwise it is all of them followed by the
    lowest-indexed items tied at t (ties are common: songs played equally often). Either way
    only those candidates are sorted.
    """
    n_rows, n_items = scores.shape
    # Block b holds items b, b + blocks, b + 2 * blocks...: interleaved, so a catalogue indexed
    # by popularity spreads its top items over every block and the threshold is tight.
    full = (n_items // blocks) * blocks
    maxima = scores[:, :full].reshape(n_rows, -1, blocks).max(axis=1)
    if full < n_items:
        maxima = np.concatenate([maxima, scores[:, full:].max(axis=1, keepdims=True)], axis=1)
    threshold = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k]
    # NaN in a row, or a threshold that lets too much through, goes to the partition route.
    usable = np.isfinite(threshold) & ~np.isnan(maxima).any(axis=1)
    threshold = np.where(usable, threshold, np.inf)
    rows, columns = _nonzero(scores > threshold[:, None])
    n_above = np.bincount(rows, minlength=n_rows)
    usable &= n_above <= max(k, int(_MAX_CANDIDATE_SHARE * n_items))
    ranked = np.full((n_rows, k), -1, dtype=np.int64)
    fallback = np.flatnonzero(~usable)
    if len(fallback):
        ranked[fallback] = _top_k_by_partition(scores[fallback], k)
        keep = usable[rows]
        rows, columns = rows[keep], columns[keep]
    tie_rows, tie_columns = _lowest_ties(scores, threshold, np.where(usable, k - n_above, 0))
    rows = np.concatenate([rows, tie_rows])
    columns = np.concatenate([columns, tie_columns])
    order = np.lexsort((columns, -scores[rows, columns], rows))
    rows, columns = rows[order], columns[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    best = rank < k
    ranked[rows[best], rank[best]] = columns[best]
    return ranked


def _lowest_ties(
    scores: np.ndarray, values: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the ``wanted[r]`` lowest-indexed items of row r scoring ``values[r]``.

    Heavy ties are found in a prefix of the row; a row with too few there is scanned whole.
    """
    rows_out: list[np.ndarray] = []
    columns_out: list[np.ndarray] = []
    needy = np.flatnonzero(wanted > 0)
    if not len(needy):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    prefix = min(scores.shape[1], _TIE_PREFIX)
    rows, columns = _nonzero(scores[needy, :prefix] == values[needy, None])
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(len(needy)))[rows]
    keep = rank < wanted[needy][rows]
    rows_out.append(needy[rows[keep]])
    columns_out.append(columns[keep])
    found = np.bincount(rows[keep], minlength=len(needy))
    for index in np.flatnonzero(found < wanted[needy]):
        row = needy[index]
        tied = np.flatnonzero(scores[row] == values[row])[: wanted[row]]
        rows_out.append(np.full(len(tied), row, dtype=np.int64))
        columns_out.append(tied)
        # The prefix's ties of this row are part of ``tied``: drop them from the prefix pick.
        rows_out[0], columns_out[0] = (
            rows_out[0][rows_out[0] != row],
            columns_out[0][rows_out[0] != row],
        )
    return np.concatenate(rows_out).astype(np.int64), np.concatenate(columns_out).astype(np.int64)


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a 2-D mask, through the flat mask: ten times faster on wide rows."""
    flat = np.flatnonzero(mask)
    return flat // mask.shape[1], flat % mask.shape[1]
