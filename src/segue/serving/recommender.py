"""One loaded model ready to answer requests: scorer, catalogue, matcher and known users.

Every route ends in ``ServingModel.recommend``: score the history (or fall back to popularity
when nothing is known), then the one post-processing pipeline of ``segue.ranking.postprocess``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segue.data.songs import KEY_SEPARATOR
from segue.ranking.ban_list import EMPTY_BAN_LIST, BanList
from segue.ranking.postprocess import PostProcessConfig, RankedItem, RankingCatalogue, rank_items
from segue.serving.matching import SongMatcher
from segue.tracking.package import ModelPackage

FALLBACK_UNKNOWN_USER = "unknown user"
FALLBACK_NO_KNOWN_SONGS = "no known songs"
FALLBACK_NO_KNOWN_ITEMS = "no known items"
FALLBACK_MODEL_CANNOT_SCORE = "model cannot score"
# Known users' score rows are kept up to this much memory per loaded model: a returning user's
# list then costs a top-k instead of a model call. Their histories only change with a new version.
KNOWN_USER_CACHE_BYTES = 64 * 1024 * 1024


def artist_identity(key: str, artist: str, identify: Callable[[str], str]) -> str:
    """Who an item is by, as the catalogue compares artists: a song key's artist part when the
    key has one (``"iu|밤편지"`` -> ``"iu"``), else the identified display artist ("" for none)."""
    if KEY_SEPARATOR in key:
        return key.split(KEY_SEPARATOR, 1)[0]
    return identify(artist) if artist else ""


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


class ServingModel:
    """A model package plus the indexes serving needs, built once when a version loads."""

    def __init__(
        self, task: str, version: ModelVersion, package: ModelPackage, fuzzy_threshold: float
    ) -> None:
        self.task = task
        self.version = version
        self.package = package
        self.loaded_at = time.time()
        items = package.items.sort_values("item", kind="stable")
        self.keys = items["key"].astype(str).tolist()
        self.artists = items["artist"].fillna("").astype(str).tolist()
        self.titles = items["title"].fillna("").astype(str).tolist()
        if package.scorer.n_items != len(self.keys):
            raise ValueError(
                f"{task}: the scorer knows {package.scorer.n_items} items, the catalogue "
                f"{len(self.keys)}"
            )
        self.matcher = SongMatcher(items, package.aliases, fuzzy_threshold)
        identify = self.matcher.identify_artist
        self.catalogue = RankingCatalogue.from_items(
            items,
            package.user_histories.values(),
            artist_ids=[
                artist_identity(k, a, identify)
                for k, a in zip(self.keys, self.artists, strict=True)
            ],
            identify_artist=identify,
        )
        row_bytes = max(len(self.keys), 1) * np.dtype(np.float32).itemsize
        self._known_scores = ScoreRows(KNOWN_USER_CACHE_BYTES // row_bytes)
        # A version that cannot score one history must fail here, before it replaces another.
        self.package.scorer.score([np.zeros(1, dtype=np.int64)])

    @property
    def algorithm(self) -> str:
        return self.package.model_name

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

    def recommend(
        self,
        history: Sequence[int] | np.ndarray,
        k: int,
        rules: ListRules,
        *,
        exclude: Sequence[int] | np.ndarray = (),
        empty_reason: str = FALLBACK_NO_KNOWN_ITEMS,
        known_user: str | None = None,
    ) -> Recommendation:
        """Top-k for a history of item indices; popularity (marked) when it cannot be scored.

        ``known_user`` names a package user whose history this is: their scores are cached.
        """
        history = np.asarray(history, dtype=np.int64)
        fallback: str | None = None
        if len(history) == 0:
            scores, fallback = self.catalogue.popularity, empty_reason
        else:
            scores = self._known_scores.get(known_user) if known_user is not None else None
            if scores is None:
                scores = self.package.scorer.score([history])[0]
                if known_user is not None:
                    self._known_scores.put(known_user, scores)
            if not np.isfinite(scores).any():
                scores, fallback = self.catalogue.popularity, FALLBACK_MODEL_CANNOT_SCORE
        excluded = np.concatenate([history, np.asarray(exclude, dtype=np.int64)])
        ranked = rank_items(
            scores,
            k,
            self.catalogue,
            exclude=excluded,
            ban_list=rules.ban_list,
            config=rules.config,
        )
        return Recommendation(ranked, fallback)

    def next_songs(
        self, songs: Sequence[str], k: int, rules: ListRules, exclude: Sequence[str] = ()
    ) -> Recommendation:
        """Next songs for a playlist of free-text songs or keys."""
        matched = self.matcher.match_all(songs)
        excluded = self.matcher.match_all(exclude)
        result = self.recommend(
            matched.items, k, rules, exclude=excluded.items, empty_reason=FALLBACK_NO_KNOWN_SONGS
        )
        return Recommendation(result.items, result.fallback, matched.unmatched + excluded.unmatched)

    def for_user(self, user_id: str, k: int, rules: ListRules) -> Recommendation:
        """A known user's list from their training history; popularity for strangers."""
        history = self.package.user_histories.get(user_id)
        if history is None:
            return self.recommend([], k, rules, empty_reason=FALLBACK_UNKNOWN_USER)
        return self.recommend(history, k, rules, known_user=user_id)

    def for_history(self, keys: Sequence[str], k: int, rules: ListRules) -> Recommendation:
        """A list for a user the model never saw, from the item keys they consumed."""
        matched = self.matcher.lookup_keys(keys)
        result = self.recommend(matched.items, k, rules)
        return Recommendation(result.items, result.fallback, matched.unmatched)

    def similar(self, item: int, k: int, rules: ListRules) -> Recommendation:
        """Items the model would play after this one alone, the item itself excluded."""
        return self.recommend([item], k, rules)
