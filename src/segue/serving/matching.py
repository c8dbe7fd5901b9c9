"""From what people type to catalogue items: song keys, "Artist - Title" strings and search boxes.

A request's song goes, in order, through: exact key lookup; the ingestion song parser (with the
model package's alias table, so "아이유 (IU) - 밤편지 [MV]" finds the same key ingestion made); a
fuzzy match of the whole string against every "artist - title" label of the catalogue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process, utils

from segue.data.song_aliases import AliasTable
from segue.data.song_parser import SongParseError, parse_song
from segue.data.song_text import normalize_name

logger = logging.getLogger(__name__)

# Search suggestions are looser than request matching: a person picks from them.
SEARCH_CUTOFF = 60.0


@dataclass(frozen=True)
class MatchResult:
    """Catalogue indices of the matched inputs, in input order, and the inputs nothing matched."""

    items: list[int]
    unmatched: list[str]


def item_label(artist: str, title: str) -> str:
    """How an item is shown and fuzzy-matched: "Artist - Title", or the title alone."""
    return f"{artist} - {title}" if artist else title


class SongMatcher:
    """Maps free text to catalogue item indices; built once per loaded model."""

    def __init__(
        self,
        items: pd.DataFrame,
        aliases: pd.DataFrame | None = None,
        fuzzy_threshold: float = 85.0,
    ) -> None:
        frame = items.sort_values("item", kind="stable")
        keys = frame["key"].astype(str).tolist()
        artists = frame["artist"].fillna("").astype(str).tolist()
        titles = frame["title"].fillna("").astype(str).tolist()
        self.fuzzy_threshold = fuzzy_threshold
        self._index_by_key = {key: index for index, key in enumerate(keys)}
        self._labels = [
            utils.default_process(item_label(a, t)) for a, t in zip(artists, titles, strict=True)
        ]
        self._artists = [utils.default_process(a) for a in artists]
        self._titles = [utils.default_process(t) for t in titles]
        self._popularity_order = np.argsort(-frame["count"].to_numpy(), kind="stable")
        self._aliases = _alias_table(aliases)

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
        text = raw.strip()
        if not text:
            return None
        found = self._index_by_key.get(text)
        if found is not None:
            return found
        parsed_key = self._parsed_key(text)
        if parsed_key is not None and parsed_key in self._index_by_key:
            return self._index_by_key[parsed_key]
        query = utils.default_process(text)
        if not query:
            return None
        best = process.extractOne(
            query,
            self._labels,
            scorer=fuzz.WRatio,
            processor=None,
            score_cutoff=self.fuzzy_threshold,
        )
        return None if best is None else int(best[2])

    def match_all(self, raws: Iterable[str]) -> MatchResult:
        items: list[int] = []
        unmatched: list[str] = []
        for raw in raws:
            found = self.match(raw)
            if found is None:
                unmatched.append(raw)
            else:
                items.append(found)
        return MatchResult(items, unmatched)

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
        processed = utils.default_process(query)
        if not processed or limit <= 0:
            return []
        found: list[int] = []
        seen: set[int] = set()
        for index in self._popularity_order:
            if (
                self._labels[index].startswith(processed)
                or self._titles[index].startswith(processed)
                or self._artists[index].startswith(processed)
            ):
                found.append(int(index))
                seen.add(int(index))
                if len(found) == limit:
                    return found
        fuzzy = process.extract(
            processed,
            self._labels,
            scorer=fuzz.WRatio,
            processor=None,
            limit=limit + len(found),
            score_cutoff=SEARCH_CUTOFF,
        )
        for _, _, index in fuzzy:
            if index not in seen:
                found.append(int(index))
                seen.add(int(index))
                if len(found) == limit:
                    break
        return found

    def _parsed_key(self, text: str) -> str | None:
        try:
            return parse_song(text, aliases=self._aliases).key
        except SongParseError:
            return None


def _alias_table(aliases: pd.DataFrame | None) -> AliasTable | None:
    if aliases is None or aliases.empty:
        return None
    return AliasTable.from_frame(aliases)
