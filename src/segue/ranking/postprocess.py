"""The one post-processing pipeline every served list goes through, whatever the model or route.

    scores -> exclude (history and request) -> ban list -> candidate pool
           -> optional re-rank (diversity or unpopular) -> at most N songs per artist -> top K

Models only score; this module decides what a person actually sees. Scores that are NaN (the
model cannot score the item) never reach a list. ``rank_lists_counted`` also says how many items
each rule took out of every list, for the event log and the metrics of the serving path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, get_args

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue._kernels import BOUND_BLOCK, block_maxima, rank_row, rank_row_sum
from segue.data.song_aliases import artist_key
from segue.ranking.ban_list import EMPTY_BAN_LIST, BanList
from segue.ranking.base_rows import BaseRows, top_k_base_rows
from segue.ranking.topk import top_k
from segue.settings import ServingSettings

RerankMode = Literal["none", "diversity", "unpopular"]
RERANK_MODES: tuple[str, ...] = get_args(RerankMode)

# Caps and re-ranks pick from the best POOL_FACTOR * k candidates (at least MIN_POOL), widened
# when the cap leaves the list short: a wider pool is slower, a narrower one drifts less from
# the model's own order.
POOL_FACTOR = 5
MIN_POOL = 50
POOL_GROWTH = 4


@dataclass(frozen=True)
class PostProcessConfig:
    """Business rules applied after scoring; built from ``serving`` settings per profile."""

    max_per_artist: int = 0
    rerank: RerankMode = "none"
    rerank_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.max_per_artist < 0:
            raise ValueError("max_per_artist must be >= 0 (0 = no cap)")
        if self.rerank not in RERANK_MODES:
            raise ValueError(f"rerank must be one of {', '.join(RERANK_MODES)}")
        if not 0.0 <= self.rerank_weight <= 1.0:
            raise ValueError("rerank_weight must be between 0 and 1")

    @classmethod
    def from_settings(cls, serving: ServingSettings) -> PostProcessConfig:
        return cls(serving.max_per_artist, serving.rerank, serving.rerank_weight)

    @property
    def reorders(self) -> bool:
        return self.rerank != "none" and self.rerank_weight > 0.0

    @property
    def needs_pool(self) -> bool:
        return self.reorders or self.max_per_artist > 0


@dataclass(frozen=True)
class RankedItem:
    """One entry of a served list: the item index and the model's score for it."""

    item: int
    score: float


@dataclass(frozen=True)
class RemovedItems:
    """How many items each rule took out of one list, each item counted once, by the first rule
    that removed it (in pipeline order: seen, excluded, ban list, artist cap).

    An item counts as taken out when it would have competed for the list: seen, excluded and
    banned items whose model score is at least the lowest score served (any scorable item when
    the list came out shorter than k), and items the artist cap skipped while filling the list.
    """

    seen: int = 0
    excluded: int = 0
    ban_list: int = 0
    artist_cap: int = 0


NOTHING_REMOVED = RemovedItems()


@dataclass(frozen=True)
class RankedList:
    """One served list and what the rules took out of it."""

    items: list[RankedItem]
    removed: RemovedItems = NOTHING_REMOVED


class RankingCatalogue:
    """What the rules need to know about every item: key, artist, popularity, co-occurrence.

    ``artist_ids`` is each item's artist identity ("" when unknown): items sharing one are capped
    together, and ``identify_artist`` maps a name from the ban list to the same identity.
    """

    def __init__(
        self,
        keys: Sequence[str] | np.ndarray,
        artist_ids: Sequence[str] | np.ndarray,
        counts: Sequence[float] | np.ndarray,
        occurrence: sp.spmatrix | None = None,
        identify_artist: Callable[[str], str] = artist_key,
    ) -> None:
        self.keys = np.asarray(keys, dtype=object)
        self.artist_ids = np.asarray(artist_ids, dtype=object)
        if not len(self.keys) == len(self.artist_ids) == len(counts):
            raise ValueError("keys, artists and counts must describe the same items")
        self.n_items = len(self.keys)
        self.identify_artist = identify_artist
        codes, _ = pd.factorize(self.artist_ids)
        # Items without an artist (movies, unparsed songs) are never capped together.
        self.artist_codes = np.where(self.artist_ids == "", -1, codes).astype(np.int64)
        counts_array = np.asarray(counts, dtype=np.float64)
        self.popularity = (counts_array / max(counts_array.max(initial=0.0), 1.0)).astype(
            np.float32
        )
        order = np.argsort(counts_array, kind="stable")
        percentile = np.empty(self.n_items, dtype=np.float32)
        percentile[order] = np.arange(self.n_items, dtype=np.float32) / max(self.n_items - 1, 1)
        self.popularity_percentile = percentile
        self.occurrence = (
            sp.csc_matrix(occurrence, dtype=np.float32) if occurrence is not None else None
        )
        if self.occurrence is not None and self.occurrence.shape[1] != self.n_items:
            raise ValueError("occurrence matrix must have one column per item")
        self._ban_cache: tuple[BanList, np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_items(
        cls,
        items: pd.DataFrame,
        histories: Iterable[np.ndarray] | None = None,
        *,
        artist_ids: Sequence[str] | None = None,
        identify_artist: Callable[[str], str] = artist_key,
    ) -> RankingCatalogue:
        """From a catalogue frame (item, key, artist, count) and the training histories.

        Without ``artist_ids``, the ``artist`` column passed through ``identify_artist`` is used.
        """
        frame = items.sort_values("item", kind="stable")
        if artist_ids is None:
            artist_ids = [identify_artist(a) for a in frame["artist"].fillna("").astype(str)]
        occurrence = None
        if histories is not None:
            sequences = [np.asarray(h, dtype=np.int64) for h in histories]
            lengths = [len(s) for s in sequences]
            columns = np.concatenate(sequences) if sequences else np.empty(0, np.int64)
            rows = np.repeat(np.arange(len(sequences)), lengths)
            occurrence = sp.csc_matrix(
                (np.ones(len(columns), dtype=np.float32), (rows, columns)),
                shape=(len(sequences), len(frame)),
            )
            occurrence.data[:] = 1.0  # repeats inside one history count once
            occurrence.sum_duplicates()
            occurrence.data[:] = 1.0
        return cls(
            frame["key"].astype(str).to_numpy(),
            artist_ids,
            frame["count"].to_numpy(),
            occurrence,
            identify_artist,
        )

    def banned(self, ban_list: BanList) -> np.ndarray:
        """The ban mask for this catalogue, computed once per ban list version."""
        return self._banned(ban_list)[0]

    def banned_items(self, ban_list: BanList) -> np.ndarray:
        """The indices of the items ``ban_list`` bans, computed once per ban list version."""
        return self._banned(ban_list)[1]

    def _banned(self, ban_list: BanList) -> tuple[np.ndarray, np.ndarray]:
        cached = self._ban_cache
        if cached is not None and cached[0] is ban_list:
            return cached[1], cached[2]
        mask = ban_list.banned_mask(self.keys, self.artist_ids, self.identify_artist)
        indices = np.flatnonzero(mask)
        self._ban_cache = (ban_list, mask, indices)
        return mask, indices

    def similarity(self, items: np.ndarray) -> np.ndarray:
        """Pairwise similarity in [0, 1]: 1 for the same artist, else co-occurrence cosine."""
        codes = self.artist_codes[items]
        same_artist = (codes[:, None] == codes[None, :]) & (codes[:, None] >= 0)
        similarity = same_artist.astype(np.float32)
        if self.occurrence is not None:
            columns = self.occurrence[:, items]
            together = (columns.T @ columns).toarray()
            norms = np.sqrt(np.diag(together))
            with np.errstate(divide="ignore", invalid="ignore"):
                cosine = together / np.outer(norms, norms)
            similarity = np.maximum(similarity, np.nan_to_num(cosine, nan=0.0))
        return similarity


def rank_items(
    scores: np.ndarray,
    k: int,
    catalogue: RankingCatalogue,
    *,
    exclude: Sequence[int] | np.ndarray = (),
    ban_list: BanList = EMPTY_BAN_LIST,
    config: PostProcessConfig = PostProcessConfig(),
) -> list[RankedItem]:
    """The served list for one scored history: at most ``k`` items, best first.

    ``scores`` has one entry per catalogue item. Excluded and banned items and items the model
    cannot score never appear. The returned score is the model's, even when a re-rank changed the
    order.
    """
    if scores.shape != (catalogue.n_items,):
        raise ValueError(f"expected {catalogue.n_items} scores, got shape {scores.shape}")
    return rank_lists(scores[None, :], [k], catalogue, [exclude], ban_list=ban_list, config=config)[
        0
    ]


def rank_lists(
    scores: np.ndarray,
    ks: Sequence[int],
    catalogue: RankingCatalogue,
    excluded: Sequence[Sequence[int] | np.ndarray],
    *,
    ban_list: BanList = EMPTY_BAN_LIST,
    config: PostProcessConfig = PostProcessConfig(),
) -> list[list[RankedItem]]:
    """``rank_items`` for a batch: row ``i`` of ``scores`` gives a list of ``ks[i]`` items.

    Without caps or re-ranks the whole batch is one vectorised top-k, which is what makes
    serving concurrent requests together cheaper than one at a time.
    """
    chosen = _choose(scores, ks, catalogue, excluded, ban_list, config)
    return [
        [RankedItem(int(item), float(row_scores[item])) for item in items if item >= 0]
        for row_scores, (items, _) in zip(scores, chosen, strict=True)
    ]


def rank_lists_counted(
    scores: np.ndarray | BaseRows,
    ks: Sequence[int],
    catalogue: RankingCatalogue,
    seen: Sequence[Sequence[int] | np.ndarray],
    excluded: Sequence[Sequence[int] | np.ndarray],
    *,
    ban_list: BanList = EMPTY_BAN_LIST,
    config: PostProcessConfig = PostProcessConfig(),
) -> list[RankedList]:
    """``rank_lists`` with the history (``seen``) and the request's exclusions apart, so each
    list also says how many items every rule took out of it (``RemovedItems``).

    The lists are exactly those of ``rank_lists`` given ``seen[i] + excluded[i]``. Rows given as
    ``BaseRows`` are ranked without reading them whole (unless a cap or re-rank needs a pool).
    """
    if len(seen) != len(excluded):
        raise ValueError("one seen list and one exclusion list per row of scores")
    if isinstance(scores, BaseRows) and config.needs_pool:
        scores = scores.dense()  # a pool's caps and re-ranks read it whole
    seen_rows = [_valid(items, catalogue.n_items) for items in seen]
    excluded_rows = [_valid(items, catalogue.n_items) for items in excluded]
    both = [np.concatenate(pair) for pair in zip(seen_rows, excluded_rows, strict=True)]
    chosen = _choose(scores, ks, catalogue, both, ban_list, config)
    banned = catalogue.banned_items(ban_list) if ban_list else np.empty(0, dtype=np.int64)
    lists = []
    for row, (items, capped) in enumerate(chosen):
        row_scores = scores[row]
        items = items[items >= 0]
        ranked = [
            RankedItem(item, score)
            for item, score in zip(items.tolist(), row_scores[items].tolist(), strict=True)
        ]
        # Removed items count when they score at least as high as the lowest item served; when
        # the list came out short, every item the model can score counts.
        floor = min(entry.score for entry in ranked) if len(ranked) >= max(ks[row], 1) else -np.inf
        # Whether an item competes depends on its score alone, so a banned item that is also
        # seen or excluded is in one of those sets: each rule counts what an earlier one left.
        seen_competing = _competing(row_scores, seen_rows[row], floor)
        excluded_competing = _competing(row_scores, excluded_rows[row], floor) - seen_competing
        removed = RemovedItems(
            seen=len(seen_competing),
            excluded=len(excluded_competing),
            ban_list=len(
                _competing(row_scores, banned, floor) - seen_competing - excluded_competing
            ),
            artist_cap=capped,
        )
        lists.append(RankedList(ranked, removed))
    return lists


def weight_row_bounds(weights: np.ndarray) -> np.ndarray | None:
    """The largest weight of every row in every block of ``BOUND_BLOCK`` columns (a sixteenth of
    the weights' memory), which lets ``rank_weight_row_sum`` add up only the blocks that can
    reach a list. None when the weights cannot be bounded (a weight not finite, or sums that
    could overflow float32): every column is then added up.
    """
    n_items = weights.shape[0]
    bounds = np.empty((n_items, -(-n_items // BOUND_BLOCK)), dtype=np.float32)
    return bounds if block_maxima(weights, bounds) else None


def rank_weight_row_sum(
    weights: np.ndarray,
    history: np.ndarray,
    excluded: np.ndarray,
    k: int,
    catalogue: RankingCatalogue,
    ban_list: BanList = EMPTY_BAN_LIST,
    bounds: np.ndarray | None = None,
) -> RankedList | None:
    """``rank_lists_counted`` for one history of a model that scores it by adding up its items'
    rows of ``weights`` (``Scorer.summed_weight_rows``), rules without caps or re-ranks.

    The row is added up, ranked and counted in one compiled call, where the general path makes
    some thirty NumPy calls around it, most of a served list's cost. With the weights'
    ``bounds`` (``weight_row_bounds``) it adds up only the blocks of columns whose bound can
    reach the list, best bound first: a read of the whole rows is most of the call's time, and
    on ml-latest-small's EASE about a tenth of the blocks are needed. Same list, same counts
    (tested). None when the row has no finite score: the general path falls back.
    """
    kernel = rank_row_sum if bounds is None else partial(_rank_row_sum_bounded, bounds)
    return _ranked_by(kernel, weights, history, excluded, k, catalogue, ban_list)


def _rank_row_sum_bounded(
    bounds: np.ndarray, weights: np.ndarray, *args: object
) -> tuple[list[int], list[float], int, int, int] | None:
    return rank_row_sum(weights, *args, bounds)


def rank_score_row(
    row: np.ndarray,
    history: np.ndarray,
    excluded: np.ndarray,
    k: int,
    catalogue: RankingCatalogue,
    ban_list: BanList = EMPTY_BAN_LIST,
) -> RankedList | None:
    """``rank_weight_row_sum`` for a float32 score row already computed (a known user's, kept
    between requests): ranked and counted in one compiled call. Same list, same counts as
    ``rank_lists_counted`` (tested); None when the row has no finite score."""
    return _ranked_by(rank_row, row, history, excluded, k, catalogue, ban_list)


def _ranked_by(
    kernel: Callable[..., tuple[list[int], list[float], int, int, int] | None],
    scores: np.ndarray,
    history: np.ndarray,
    excluded: np.ndarray,
    k: int,
    catalogue: RankingCatalogue,
    ban_list: BanList,
) -> RankedList | None:
    banned = catalogue.banned(ban_list) if ban_list else None
    banned_items = catalogue.banned_items(ban_list) if ban_list else None
    listed = kernel(scores, history, excluded, k, banned, banned_items)
    if listed is None:
        return None
    items, item_scores, seen, excluded_count, banned_count = listed
    ranked = [RankedItem(item, score) for item, score in zip(items, item_scores, strict=True)]
    return RankedList(ranked, RemovedItems(seen, excluded_count, banned_count))


def _valid(items: Sequence[int] | np.ndarray, n_items: int) -> np.ndarray:
    row = np.asarray(items, dtype=np.int64).reshape(-1)
    return row[(row >= 0) & (row < n_items)]


def _competing(scores: np.ndarray, items: np.ndarray, floor: float) -> set[int]:
    """The distinct ``items`` the model scores at least as high as ``floor``: usually few, so a
    set (cheaper than NumPy's unique and isin on a handful)."""
    if len(items) == 0:
        return set()
    values = scores[items]
    return set(items[np.isfinite(values) & (values >= floor)].tolist())


def _choose(
    scores: np.ndarray | BaseRows,
    ks: Sequence[int],
    catalogue: RankingCatalogue,
    excluded: Sequence[Sequence[int] | np.ndarray],
    ban_list: BanList,
    config: PostProcessConfig,
) -> list[tuple[np.ndarray, int]]:
    """Each row's chosen item indices (-1 pads a short top-k), and how many the cap skipped."""
    if isinstance(scores, BaseRows):
        if scores.n_items != catalogue.n_items or not len(ks) == len(excluded) == len(scores):
            raise ValueError("expected one row of the catalogue's items per k and exclusion list")
        # ``rank_lists_counted``, the one caller with base rows, gives valid exclusions.
        banned = catalogue.banned(ban_list) if ban_list else None
        best = top_k_base_rows(scores, max(ks, default=0), excluded, banned)
        return [(best[row, : max(k, 0)], 0) for row, k in enumerate(ks)]
    if scores.ndim != 2 or scores.shape[1] != catalogue.n_items:
        raise ValueError(f"expected rows of {catalogue.n_items} scores, got shape {scores.shape}")
    if not len(ks) == len(excluded) == len(scores):
        raise ValueError("one k and one exclusion list per row of scores")
    scores = np.asarray(scores, dtype=np.float32)
    banned = catalogue.banned(ban_list) if ban_list else None
    longest = max(ks, default=0)
    if longest <= 0:
        return [(np.empty(0, dtype=np.int64), 0) for _ in ks]
    if config.needs_pool:
        return [
            _select_from_pool(row, items, banned, k, catalogue, config)
            if k > 0
            else (np.empty(0, dtype=np.int64), 0)
            for row, items, k in zip(scores, excluded, ks, strict=True)
        ]
    best = top_k(scores, longest, excluded, banned)
    return [(best[row, : max(k, 0)], 0) for row, k in enumerate(ks)]


def _select_from_pool(
    scores: np.ndarray,
    excluded: Sequence[int] | np.ndarray,
    banned: np.ndarray | None,
    k: int,
    catalogue: RankingCatalogue,
    config: PostProcessConfig,
) -> tuple[np.ndarray, int]:
    pool_size = min(catalogue.n_items, max(k * POOL_FACTOR, MIN_POOL))
    while True:
        pool = top_k(scores[None, :], pool_size, [excluded], banned)[0]
        pool = pool[pool >= 0]
        chosen, capped = _select(pool, scores[pool], k, catalogue, config)
        exhausted = len(pool) < pool_size or pool_size >= catalogue.n_items
        if len(chosen) >= k or exhausted:
            return chosen, capped
        pool_size = min(catalogue.n_items, pool_size * POOL_GROWTH)


def _select(
    pool: np.ndarray,
    pool_scores: np.ndarray,
    k: int,
    catalogue: RankingCatalogue,
    config: PostProcessConfig,
) -> tuple[np.ndarray, int]:
    """Up to k pool items in re-ranked order, honouring the per-artist cap, and how many items
    the cap skipped to fill them."""
    relevance = _min_max(pool_scores)
    weight = config.rerank_weight if config.reorders else 0.0
    if config.rerank == "diversity" and weight > 0.0:
        return _select_diverse(pool, relevance, k, catalogue, config.max_per_artist, weight)
    if config.rerank == "unpopular" and weight > 0.0:
        objective = (1.0 - weight) * relevance + weight * (
            1.0 - catalogue.popularity_percentile[pool]
        )
        # Stable sort keeps the pool's (score, index) order among equal objectives.
        pool = pool[np.argsort(-objective, kind="stable")]
    return _cap_per_artist(pool, catalogue.artist_codes, config.max_per_artist, k)


def _select_diverse(
    pool: np.ndarray,
    relevance: np.ndarray,
    k: int,
    catalogue: RankingCatalogue,
    max_per_artist: int,
    weight: float,
) -> tuple[np.ndarray, int]:
    """Maximal marginal relevance: each pick trades relevance against its closest earlier pick."""
    similarity = catalogue.similarity(pool)
    closest = np.zeros(len(pool), dtype=np.float32)
    available = np.ones(len(pool), dtype=bool)
    per_artist: dict[int, int] = {}
    chosen: list[int] = []
    capped = 0
    while len(chosen) < k and available.any():
        objective = (1.0 - weight) * relevance - weight * closest
        objective[~available] = -np.inf
        best = int(np.argmax(objective))
        available[best] = False
        artist = int(catalogue.artist_codes[pool[best]])
        if max_per_artist > 0 and artist >= 0:
            if per_artist.get(artist, 0) >= max_per_artist:
                capped += 1
                continue
            per_artist[artist] = per_artist.get(artist, 0) + 1
        chosen.append(int(pool[best]))
        closest = np.maximum(closest, similarity[best])
    return np.array(chosen, dtype=np.int64), capped


def cap_per_artist(
    ranked: np.ndarray, artist_codes: np.ndarray, max_per_artist: int, k: int
) -> np.ndarray:
    """The first k items of ``ranked`` keeping at most ``max_per_artist`` per artist (0 = no cap)."""
    return _cap_per_artist(ranked, artist_codes, max_per_artist, k)[0]


def _cap_per_artist(
    ranked: np.ndarray, artist_codes: np.ndarray, max_per_artist: int, k: int
) -> tuple[np.ndarray, int]:
    """``cap_per_artist``, and how many items it skipped before the list was full."""
    if max_per_artist <= 0:
        return np.asarray(ranked[:k], dtype=np.int64), 0
    per_artist: dict[int, int] = {}
    kept: list[int] = []
    capped = 0
    for item in ranked:
        artist = int(artist_codes[item])
        if artist >= 0:
            if per_artist.get(artist, 0) >= max_per_artist:
                capped += 1
                continue
            per_artist[artist] = per_artist.get(artist, 0) + 1
        kept.append(int(item))
        if len(kept) == k:
            break
    return np.array(kept, dtype=np.int64), capped


def _min_max(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float32)
    if len(values) == 0 or float(values.max()) <= float(values.min()):
        return np.zeros(len(values), dtype=np.float32)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low)
