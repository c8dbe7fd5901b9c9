"""One loaded model ready to answer requests: scorer, catalogue, matcher and known users.

Every route turns its input into a ``ListRequest`` (matching songs or keys to catalogue items),
and every list comes out of ``ServingModel.recommend_many``: score the histories of a batch in one
model call (or fall back to popularity when nothing is known), then the one post-processing
pipeline of ``segue.ranking.postprocess``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segue.data.dataset import item_texts
from segue.ranking.ban_list import EMPTY_BAN_LIST, BanList
from segue.ranking.base_rows import BaseRows
from segue.ranking.postprocess import (
    NOTHING_REMOVED,
    PostProcessConfig,
    RankedItem,
    RankedList,
    RemovedItems,
    rank_lists_counted,
    rank_score_row,
    rank_weight_row_sum,
    weight_row_bounds,
)
from segue.serving.matching import MatchBudget, SongMatcher
from segue.serving.precomputed import PrecomputedList, PrecomputedLists
from segue.tracking.package import ModelPackage, ranking_catalogue

FALLBACK_UNKNOWN_USER = "unknown user"
FALLBACK_NO_KNOWN_SONGS = "no known songs"
FALLBACK_NO_KNOWN_ITEMS = "no known items"
FALLBACK_MODEL_CANNOT_SCORE = "model cannot score"
FALLBACK_REASONS = (
    FALLBACK_UNKNOWN_USER,
    FALLBACK_NO_KNOWN_SONGS,
    FALLBACK_NO_KNOWN_ITEMS,
    FALLBACK_MODEL_CANNOT_SCORE,
)
# Known users' score rows are kept up to this much memory per loaded model: a returning user's
# list then costs a top-k instead of a model call. Their histories only change with a new version.
KNOWN_USER_CACHE_BYTES = 64 * 1024 * 1024
# The most scores or weight-row entries a list answered on the event loop may read
# (``quick_list``): about 0.3 ms of the benchmark machine's core (103 rows of 9,724 movies), where
# the hop to the scoring thread and back costs some 60 us of CPU. More goes to the scoring queue.
QUICK_LIST_CELLS = 1_000_000
# Entries of a score row read first when looking for a finite score (a model that cannot score
# a history at all gives a row of NaN; any other row nearly always has one among these).
FINITE_PROBE = 1024


class ScoreRows:
    """A bounded least-recently-used cache of score rows, shared by the request threads."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows.move_to_end(key)
            return row

    def put(self, key: str, row: np.ndarray) -> None:
        if self.capacity <= 0:
            return
        row.setflags(write=False)  # shared between requests: nobody may change it
        with self._lock:
            self._rows[key] = row
            self._rows.move_to_end(key)
            while len(self._rows) > self.capacity:
                self._rows.popitem(last=False)


@dataclass(frozen=True)
class ModelVersion:
    """Which registered model version serves a task."""

    name: str
    version: str

    @classmethod
    def from_info(cls, info: Any) -> ModelVersion:
        """From an MLflow ``ModelVersion``, a mapping, or anything with name and version."""
        if isinstance(info, ModelVersion):
            return info
        if isinstance(info, Mapping):
            return cls(str(info["name"]), str(info["version"]))
        return cls(str(info.name), str(info.version))


@dataclass(frozen=True)
class ListRules:
    """The post-processing rules one request is served under (the ban list as of now)."""

    config: PostProcessConfig = field(default_factory=PostProcessConfig)
    ban_list: BanList = EMPTY_BAN_LIST


@dataclass(frozen=True)
class Recommendation:
    items: list[RankedItem]
    fallback: str | None = None
    unmatched: list[str] = field(default_factory=list)
    removed: RemovedItems = NOTHING_REMOVED  # items each post-processing rule took out
    # The matched input items (the history scored), for the event log.
    history: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False, repr=False
    )
    # The matched items the request excluded (``exclude``), for the event log.
    excluded: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False, repr=False
    )


@dataclass(frozen=True)
class ListRequest:
    """One list to serve, in catalogue item indices: what ``recommend_many`` takes."""

    history: np.ndarray
    k: int
    rules: ListRules
    exclude: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    empty_reason: str = FALLBACK_NO_KNOWN_ITEMS
    known_user: str | None = None  # a package user whose history this is: their scores are cached
    unmatched: list[str] = field(default_factory=list)
    precomputed: PrecomputedList | None = None  # the list read from a batch table: nothing scored


def _indices(items: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(items, dtype=np.int64).reshape(-1)


class ServingModel:
    """A model package plus the indexes serving needs, built once when a version loads."""

    def __init__(
        self,
        task: str,
        version: ModelVersion,
        package: ModelPackage,
        fuzzy_threshold: float,
        match_budget: MatchBudget | None = None,
    ) -> None:
        self.task = task
        self.version = version
        self.package = package
        self.loaded_at = time.time()
        items = package.items.sort_values("item", kind="stable")
        texts = item_texts(items)
        self.keys, self.artists, self.titles = texts.keys, texts.artists, texts.titles
        if package.scorer.n_items != len(self.keys):
            raise ValueError(
                f"{task}: the scorer knows {package.scorer.n_items} items, the catalogue "
                f"{len(self.keys)}"
            )
        self.matcher = SongMatcher(items, package.aliases, fuzzy_threshold, budget=match_budget)
        self.catalogue = ranking_catalogue(package)
        row_bytes = max(len(self.keys), 1) * np.dtype(np.float32).itemsize
        self._known_scores = ScoreRows(KNOWN_USER_CACHE_BYTES // row_bytes)
        # Known users' lists from a batch table (``serving.precomputed_dir``), set by the model
        # store when the table holds this very version's lists.
        self.precomputed: PrecomputedLists | None = None
        # A version that cannot score one history must fail here, before it replaces another.
        self.package.scorer.score([np.zeros(1, dtype=np.int64)])
        self._row_weights = package.scorer.summed_weight_rows()
        self._row_bounds = (
            None if self._row_weights is None else weight_row_bounds(self._row_weights)
        )

    @property
    def algorithm(self) -> str:
        return self.package.algorithm

    def describe(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "name": self.version.name,
            "version": self.version.version,
            "algorithm": self.algorithm,
            "items": len(self.keys),
            "known_users": len(self.package.user_histories),
            "loaded_at": self.loaded_at,
        }

    def recommend_many(self, requests: Sequence[ListRequest]) -> list[Recommendation]:
        """The lists for a batch of requests, with one model call for every history it scores.

        Scoring a batch together costs far less per list than one call each; the lists are the
        same as one request at a time. Lists read from a batch table, known users' kept score
        rows and new histories of a model whose scores are sums of weight rows skip the batch's
        model call.
        """
        listed = [self._listed(request) for request in requests]
        rest = [request for request, done in zip(requests, listed, strict=True) if done is None]
        if not rest:
            return listed  # type: ignore[return-value]
        scored = iter(self._score_and_rank(rest))
        return [next(scored) if done is None else done for done in listed]

    def quick_list(self, request: ListRequest) -> Recommendation | None:
        """The list when answering it costs no more than a hop to the scoring queue would: read
        from the batch table, or ranked in one compiled call from at most ``QUICK_LIST_CELLS``
        scores or weight-row entries. None for a request the scoring queue must score."""
        return self._listed(request, QUICK_LIST_CELLS)

    def _listed(self, request: ListRequest, max_cells: float = math.inf) -> Recommendation | None:
        """The list read from the batch table, or ranked in one compiled call that reads at
        most ``max_cells`` entries: a known user's kept score row (``rank_score_row``), or a
        new history's weight rows added up (``rank_weight_row_sum``). None for a request that
        needs the general path."""
        if request.precomputed is not None:
            return Recommendation(
                list(request.precomputed.items),
                request.precomputed.fallback,
                history=request.history,
                excluded=request.exclude,
            )
        if len(request.history) == 0 or request.rules.config.needs_pool:
            return None
        rules, n_items = request.rules, len(self.keys)
        if request.known_user is not None:
            row = self._known_scores.get(request.known_user)
            if row is None or row.dtype != np.float32 or n_items > max_cells:
                return None  # scored (and kept) by the general path
            ranked = rank_score_row(
                row, request.history, request.exclude, request.k, self.catalogue, rules.ban_list
            )
        elif self._row_weights is not None and len(request.history) * n_items <= max_cells:
            ranked = rank_weight_row_sum(
                self._row_weights,
                request.history,
                request.exclude,
                request.k,
                self.catalogue,
                rules.ban_list,
                self._row_bounds,
            )
        else:
            return None
        if ranked is None:
            return None
        return Recommendation(
            ranked.items,
            None,
            request.unmatched,
            ranked.removed,
            request.history,
            request.exclude,
        )

    def _score_and_rank(self, requests: Sequence[ListRequest]) -> list[Recommendation]:
        """The general path: one model call for the batch's histories, then post-processing."""
        base_rows = self._base_rows(requests)
        if base_rows is not None:
            return self._rank(requests, base_rows, [None] * len(requests))
        scores: list[np.ndarray | None] = [None] * len(requests)
        fallbacks: list[str | None] = [None] * len(requests)
        to_score: list[int] = []
        for position, request in enumerate(requests):
            if len(request.history) == 0:
                scores[position] = self.catalogue.popularity
                fallbacks[position] = request.empty_reason
            elif request.known_user is not None:
                scores[position] = self._known_scores.get(request.known_user)
            if scores[position] is None:
                to_score.append(position)
        if to_score:
            rows = self.package.scorer.score([requests[p].history for p in to_score])
            for position, row in zip(to_score, rows, strict=True):
                scores[position] = row
                if requests[position].known_user is not None:
                    self._known_scores.put(requests[position].known_user, row)
        for position, row in enumerate(scores):
            if not _any_finite(row):
                scores[position] = self.catalogue.popularity
                fallbacks[position] = FALLBACK_MODEL_CANNOT_SCORE
        return self._rank(requests, scores, fallbacks)

    def _base_rows(self, requests: Sequence[ListRequest]) -> BaseRows | None:
        """The batch's score rows as base rows (``segue.ranking.base_rows``), when the model
        gives them and every request is scored from its own history, none falling back."""
        if any(len(r.history) == 0 or r.known_user is not None for r in requests):
            return None
        rows = self.package.scorer.score_base_rows([request.history for request in requests])
        if rows is None or not all(rows.can_score(row) for row in range(len(rows))):
            return None
        return rows

    def _rank(
        self,
        requests: Sequence[ListRequest],
        scores: list[np.ndarray] | BaseRows,
        fallbacks: list[str | None],
    ) -> list[Recommendation]:
        """The post-processed lists of scored requests, one ranking call per set of rules."""
        ranked: list[RankedList] = [RankedList([]) for _ in requests]
        for rules, positions in _group_by_rules(requests).items():
            if isinstance(scores, BaseRows):
                rows: np.ndarray | BaseRows = (
                    scores if len(positions) == len(requests) else scores.take(positions)
                )
            else:  # one row is passed as a view: ranking copies what it masks
                rows = (
                    scores[positions[0]][None, :]
                    if len(positions) == 1
                    else np.stack([scores[p] for p in positions])
                )
            lists = rank_lists_counted(
                rows,
                [requests[p].k for p in positions],
                self.catalogue,
                [requests[p].history for p in positions],
                [requests[p].exclude for p in positions],
                ban_list=rules.ban_list,
                config=rules.config,
            )
            for position, items in zip(positions, lists, strict=True):
                ranked[position] = items
        return [
            Recommendation(
                listed.items,
                fallback,
                request.unmatched,
                listed.removed,
                request.history,
                request.exclude,
            )
            for listed, fallback, request in zip(ranked, fallbacks, requests, strict=True)
        ]

    def recommend(self, request: ListRequest) -> Recommendation:
        """One request's list, as a batch of one."""
        return self.recommend_many([request])[0]

    def next_songs_request(
        self, songs: Sequence[str], k: int, rules: ListRules, exclude: Sequence[str] = ()
    ) -> ListRequest:
        """Next songs for a playlist of free-text songs or keys."""
        matched = self.matcher.match_all(songs)
        excluded = self.matcher.match_all(exclude)
        return ListRequest(
            _indices(matched.items),
            k,
            rules,
            exclude=_indices(excluded.items),
            empty_reason=FALLBACK_NO_KNOWN_SONGS,
            unmatched=matched.unmatched + excluded.unmatched,
        )

    def user_request(self, user_id: str, k: int, rules: ListRules) -> ListRequest:
        """A known user's list from their training history (read from the batch table when it
        holds it for these rules and k); popularity for strangers."""
        history = self.package.user_histories.get(user_id)
        if history is None:
            return ListRequest(_indices([]), k, rules, empty_reason=FALLBACK_UNKNOWN_USER)
        table = self.precomputed
        listed = None if table is None else table.lookup(user_id, k, rules.config, rules.ban_list)
        return ListRequest(_indices(history), k, rules, known_user=user_id, precomputed=listed)

    def history_request(self, keys: Sequence[str], k: int, rules: ListRules) -> ListRequest:
        """A list for a user the model never saw, from the item keys they consumed."""
        matched = self.matcher.lookup_keys(keys)
        return ListRequest(_indices(matched.items), k, rules, unmatched=matched.unmatched)

    def similar_request(self, item: int, k: int, rules: ListRules) -> ListRequest:
        """Items the model would play after this one alone, the item itself excluded."""
        return ListRequest(_indices([item]), k, rules)


def _any_finite(row: np.ndarray) -> bool:
    """Whether a score row has a finite score, usually read off its first entries."""
    return bool(np.isfinite(row[:FINITE_PROBE]).any() or np.isfinite(row).any())


def _group_by_rules(requests: Sequence[ListRequest]) -> dict[ListRules, list[int]]:
    """Positions of the requests served under each distinct set of rules (usually one)."""
    groups: dict[ListRules, list[int]] = {}
    for position, request in enumerate(requests):
        groups.setdefault(request.rules, []).append(position)
    return groups
