"""From what people type to catalogue items: song keys, "Artist - Title" strings and search boxes.

A request's song goes, in order, through:

1. exact key lookup;
2. the ingestion song parser with the model package's alias table, so "아이유 (IU) - 밤편지 [MV]"
   finds the key ingestion made (decorations, featured artists, case and spacing settled here);
3. a fuzzy match of the parsed artist and title against a few candidates that
   :class:`~segue.serving.song_index.SongIndex` finds without scanning the catalogue
   (``max_candidates`` at most), scored by edit distance on the artist and the title separately
   and accepted at ``fuzzy_threshold`` (chosen on the labelled set of ``benchmarks/matching.py``).

Steps 1 and 2 are dictionary lookups. Step 3 is bounded per request by a :class:`MatchBudget`:
once a request has sent ``max_fuzzy`` songs to it or spent ``milliseconds`` there (checked every
``FUZZY_CHUNK`` songs, which go to it together), its remaining songs skip it and are reported
unmatched, so no request can hold a scoring thread for long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from segue.data.song_aliases import AliasTable, artist_key
from segue.data.song_parser import KEY_SEPARATOR, SongParseError, parse_song
from segue.data.song_text import normalize_name
from segue.serving.song_index import SongIndex, key_parts, similarity
from segue.settings import ServingSettings

logger = logging.getLogger(__name__)

# Songs a request sends to the fuzzy step together (their unknown artists are looked up in one
# pass); its time budget is checked between them.
FUZZY_CHUNK = 32
# Search suggestions are looser than request matching: a person picks from them.
SEARCH_CUTOFF = 60.0
DEFAULT_FUZZY_THRESHOLD = 83.0  # serving.fuzzy_threshold's default
MatchStage = Literal["key", "parsed", "fuzzy", "none"]


@dataclass(frozen=True)
class MatchBudget:
    """What fuzzy matching may cost: catalogue songs scored per song (``max_candidates``), songs
    of one request sent to it (``max_fuzzy``) and time one request may spend in it.

    ``max_fuzzy`` 0 or ``milliseconds`` 0 turn fuzzy matching off for requests (keys and parsed
    keys still match).
    """

    max_candidates: int = 50
    max_fuzzy: int = 100
    milliseconds: float = 25.0

    @classmethod
    def from_settings(cls, serving: ServingSettings) -> MatchBudget:
        """The budget of ``serving.match_candidates``, ``max_fuzzy_per_request`` and
        ``match_budget_ms``."""
        return cls(serving.match_candidates, serving.max_fuzzy_per_request, serving.match_budget_ms)


@dataclass(frozen=True)
class MatchResult:
    """Catalogue indices of the matched inputs, in input order, and the inputs nothing matched.

    ``fuzzy_tried`` counts the inputs that went to the fuzzy stage, ``fuzzy_skipped`` those that
    would have but found the budget spent (they are in ``unmatched``).
    """

    items: list[int]
    unmatched: list[str]
    fuzzy_tried: int = 0
    fuzzy_skipped: int = 0


class _Spending:
    """One request's use of a :class:`MatchBudget`."""

    def __init__(self, budget: MatchBudget) -> None:
        self.budget = budget
        self.deadline = time.perf_counter() + budget.milliseconds / 1000.0
        self.tried = 0

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` more songs may go to the fuzzy step (counted as tried)."""
        if time.perf_counter() >= self.deadline:
            return 0
        allowed = max(0, min(wanted, self.budget.max_fuzzy - self.tried))
        self.tried += allowed
        return allowed


class SongMatcher:
    """Maps free text to catalogue item indices; built once per loaded model."""

    def __init__(
        self,
        items: pd.DataFrame,
        aliases: pd.DataFrame | None = None,
        fuzzy_threshold: float = DEFAULT_FUZZY_THRESHOLD,
        *,
        budget: MatchBudget | None = None,
    ) -> None:
        frame = items.sort_values("item", kind="stable")
        keys = frame["key"].astype(str).tolist()
        self.fuzzy_threshold = fuzzy_threshold
        self.budget = budget if budget is not None else MatchBudget()
        self.keys = keys  # catalogue keys in item order
        self._index_by_key = {key: index for index, key in enumerate(keys)}
        self._aliases = _alias_table(aliases)
        self.index = SongIndex(
            keys,
            frame["artist"].fillna("").astype(str).tolist(),
            frame["count"].to_numpy(),
            self.identify_artist,
        )

    def identify_artist(self, name: str) -> str:
        """An artist name in the key form song keys use, aliases resolved ("아이유" -> "iu")."""
        if self._aliases is not None:
            return self._aliases.canonical(name)
        return normalize_name(name)

    def lookup_key(self, key: str) -> int | None:
        """The item with exactly this key, or None."""
        return self._index_by_key.get(key)

    def match(self, raw: str) -> int | None:
        """The item a free-text song (or a key) names, or None when nothing is close enough."""
        found, query = self._match_by_key(raw)
        if found is not None or query is None:
            return found
        return self._match_fuzzy(query)

    def match_with_stage(self, raw: str) -> tuple[int | None, MatchStage]:
        """The item a free-text song names and the stage that found it ("none" when none did)."""
        found, query = self._match_by_key(raw)
        if found is not None:
            return found, "key" if raw.strip() in self._index_by_key else "parsed"
        if query is None:
            return None, "none"
        found = self._match_fuzzy(query)
        return found, "none" if found is None else "fuzzy"

    def match_all(self, raws: Iterable[str]) -> MatchResult:
        """Match a request's songs in order; fuzzy matching stops when the request's budget is
        spent and the songs left are reported unmatched.

        The songs that need the fuzzy step go to it together, ``FUZZY_CHUNK`` distinct ones at
        a time (a repeated unknown song is tried once), the time budget checked between chunks.
        """
        spending = _Spending(self.budget)
        keyed = [(raw, *self._match_by_key(raw)) for raw in raws]
        pending = list(dict.fromkeys(q for _, found, q in keyed if found is None and q is not None))
        fuzzy_found: dict[str, int | None] = {}
        for start in range(0, len(pending), FUZZY_CHUNK):
            chunk = pending[start : start + spending.take(min(FUZZY_CHUNK, len(pending) - start))]
            if not chunk:
                break
            fuzzy_found.update(zip(chunk, self._match_fuzzy_many(chunk), strict=True))
        items: list[int] = []
        unmatched: list[str] = []
        skipped = 0
        for raw, found, query in keyed:
            if found is None and query is not None:
                found = fuzzy_found.get(query)
                skipped += query not in fuzzy_found
            if found is None:
                unmatched.append(raw)
            else:
                items.append(found)
        if skipped:
            logger.info("song matching budget spent: %d songs not fuzzy-matched", skipped)
        return MatchResult(items, unmatched, len(fuzzy_found), skipped)

    def lookup_keys(self, keys: Iterable[str]) -> MatchResult:
        """Exact key lookup only: user histories name items by id, never by fuzzy text."""
        items: list[int] = []
        unmatched: list[str] = []
        for key in keys:
            found = self._index_by_key.get(key)
            if found is None:
                unmatched.append(key)
            else:
                items.append(found)
        return MatchResult(items, unmatched)

    def search(self, query: str, limit: int) -> list[int]:
        """Items for a search box: prefix matches (most popular first), then fuzzy matches."""
        prefix = normalize_name(query)
        if not prefix or limit <= 0:
            return []
        found = self.index.prefix_matches(prefix, limit).tolist()
        if len(found) == limit:
            return found
        seen = set(found)
        scored = []
        for item in self.index.candidates("", prefix, self.budget.max_candidates).tolist():
            if item in seen:
                continue
            artist, title = self.index.artist_of_song(item), self.index.titles[item]
            score = max(
                similarity(prefix, title),
                similarity(prefix, artist + title),
                similarity(prefix, artist),
            )
            if score >= SEARCH_CUTOFF:
                scored.append((-score, int(self.index.popularity_rank[item]), item))
        found.extend(item for _, _, item in sorted(scored)[: limit - len(found)])
        return found

    def _match_by_key(self, raw: str) -> tuple[int | None, str | None]:
        """(item, None) when the key or parsed key is in the catalogue; else (None, the parsed
        key to try fuzzily), or (None, None) when the text cannot name a song."""
        text = raw.strip()
        if not text:
            return None, None
        found = self._index_by_key.get(text)
        if found is not None:
            return found, None
        try:
            parsed = parse_song(text, aliases=self._aliases)
        except SongParseError:
            return None, None
        found = self._index_by_key.get(parsed.key)
        if found is not None:
            return found, None
        # "DANDAYE (단다예) - X" where the table does not know the pair: either name may be the
        # one the catalogue keys the artist by.
        title = key_parts(parsed.key)[1]
        for alias in parsed.artist_aliases:
            found = self._index_by_key.get(f"{artist_key(alias)}{KEY_SEPARATOR}{title}")
            if found is not None:
                return found, None
        return None, parsed.key

    def _match_fuzzy(self, parsed_key: str) -> int | None:
        return self._match_fuzzy_many([parsed_key])[0]

    def _match_fuzzy_many(self, parsed_keys: list[str]) -> list[int | None]:
        found = self.index.best_matches(
            [key_parts(key) for key in parsed_keys],
            self.fuzzy_threshold,
            self.budget.max_candidates,
        )
        return [None if best is None else best.item for best in found]


def _alias_table(aliases: pd.DataFrame | None) -> AliasTable | None:
    if aliases is None or aliases.empty:
        return None
    return AliasTable.from_frame(aliases)
