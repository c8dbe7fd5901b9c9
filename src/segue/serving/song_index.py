"""An index over a song catalogue that finds a few candidates for a free-text song without scanning.

Song keys (``"artist|title"``, see :mod:`segue.data.song_parser`) are the only text the index
reads: a query arrives as the artist and title parts of the key the parser made of it, so case,
spacing, decorations, featured artists and aliases are already settled and what is left are
misspellings, a missing artist or an artist glued to the title.

Since a song by another artist scores no higher than the two artists' similarity (below), a
query with an artist first asks which catalogue artists are *within reach* of it
(:class:`_ArtistReach`, exact): none means no match at all (most songs of artists the catalogue
lacks end there), and when those artists have at most ``limit`` songs, all of them are scored.
Otherwise candidates come from two routes, each bounded:

* **by artist**: the query's artist exactly, else the few artists whose names share the most
  character n-grams with it, then those artists' songs (the ones sharing most title n-grams first
  when an artist has more songs than the route may take);
* **by title**: the songs whose titles share the most character n-grams with the query's title,
  read from an inverted index (n-grams so frequent that their lists would be long are skipped
  while rarer ones remain, and only the query's ``TITLE_GRAMS_COUNTED`` rarest n-grams are
  counted, so a lookup reads a few short lists and does no work per catalogue song).

N-grams are trigrams of keys written in Latin letters and bigrams of the others (a hangul or han
syllable carries as much as three letters), over the key padded with ``^`` and ``$``.

Candidates are then scored with an edit-distance similarity (optimal string alignment: a typo,
a missing or extra letter or two swapped letters each cost one edit) on the artist and the title
separately; the score is the lower of the two, so a known title by an unknown artist scores low.
Unlike partial-overlap scorers, a string that merely contains a catalogue title does not score
high. At most ``limit`` songs are scored per query (the matcher passes its budget's
``max_candidates``).

Prefix search (for search-box suggestions) bisects sorted lists of title keys, artist-and-title
keys and artist names, so it reads only the entries that start with the prefix.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA
from rapidfuzz.process import cpdist

from segue._kernels import count_runs
from segue.data.song_parser import KEY_SEPARATOR
from segue.data.song_text import normalize_name, read_artist_side

# At most this many artists are taken by the artist route when the query's artist is not known.
NEAR_ARTISTS = 3
# Share of n-grams an artist must have in common with the query's to count as near
# (Dice coefficient when the query names an artist; share of the artist's n-grams when the
# artist may be glued to the title of a query without one).
NEAR_ARTIST_DICE = 0.4
GLUED_ARTIST_SHARE = 0.6
# An n-gram found in more than this share of the entries is skipped when rarer ones remain.
FREQUENT_GRAM_SHARE = 0.05
RAREST_GRAMS_KEPT = 3
# The title route counts shared n-grams over this many of the query title's rarest n-grams only.
TITLE_GRAMS_COUNTED = 4
# Trigrams every "the" + name form shares: left out of the artist reach index.
_THE_GRAMS = frozenset({"^th", "the"})
# What an n-gram lookup finds when no owner shares a gram (owners, counts; read-only).
_NO_OWNERS = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
for _empty in _NO_OWNERS:
    _empty.flags.writeable = False
# No artist in reach, no song to score (read-only, shared).
_NO_INDICES = np.empty(0, dtype=np.int64)
_NO_INDICES.flags.writeable = False
# A known artist whose reach was not worked out yet.
_NOT_KEPT = np.empty(0, dtype=np.int64)
# Slack when turning a similarity threshold into a whole number of edits.
_ROUNDING = 1e-9
# Upper end of the code points, so every key starting with a prefix sorts below prefix + this.
_AFTER_ANY_PREFIX = "\U0010ffff"


@dataclass(frozen=True)
class Candidate:
    """A scored catalogue song: its index and its similarity to the query (0-100)."""

    item: int
    score: float


def key_parts(key: str) -> tuple[str, str]:
    """(artist, title) parts of a song key; ("", key) for keys without an artist part."""
    artist, separator, title = key.partition(KEY_SEPARATOR)
    return (artist, title) if separator else ("", key)


def similarity(first: str, second: str) -> float:
    """Edit-distance similarity of two keys, 0-100 (100: equal)."""
    return 100.0 * OSA.normalized_similarity(first, second)


def score_candidates(
    query_artists: Sequence[str],
    query_titles: Sequence[str],
    query_of: np.ndarray,
    artists: Sequence[str],
    artist_of: np.ndarray,
    titles: Sequence[str],
    same_artist: np.ndarray,
) -> np.ndarray:
    """How well queries' artist and title parts name some catalogue songs, 0-100.

    Pair ``i`` is song ``i`` (title ``titles[i]``, artist ``artists[artist_of[i]]``) asked by
    query ``query_of[i]``. With an artist in the query both parts must be close (the lower
    score counts; a misspelt leading "The", which keys drop, is forgiven); without one the title
    alone counts, or the artist and title together when the query glued them
    ("coldplayyellow"). ``same_artist`` marks the pairs whose song's artist the query's is known
    to be (by key or alias). Each part is scored for every pair in one edit-distance call, and
    each distinct (query, artist) once.
    """
    asked_titles = np.array(query_titles, dtype=object)[query_of]
    # The title parts first; each pair's score then takes its other part into account.
    scores = _pair_similarities(asked_titles, titles)
    named = np.array([bool(artist) for artist in query_artists], dtype=bool)[query_of]
    glued_pairs = np.flatnonzero(~named)
    if len(glued_pairs):
        glued = [artists[artist_of[i]] + titles[i] for i in glued_pairs.tolist()]
        scores[glued_pairs] = np.maximum(
            scores[glued_pairs], _pair_similarities(asked_titles[glued_pairs], glued)
        )
    named_pairs = np.flatnonzero(named)
    if len(named_pairs):
        distinct, inverse = np.unique(
            query_of[named_pairs] * len(artists) + artist_of[named_pairs], return_inverse=True
        )
        asking, code = np.divmod(distinct, len(artists))
        asked_artists = np.array(query_artists, dtype=object)[asking]
        names = [artists[c] for c in code.tolist()]
        artist_scores = np.maximum(
            _pair_similarities(asked_artists, names),
            _pair_similarities(asked_artists, ["the" + name for name in names]),
        )[inverse.reshape(-1)]
        scores[named_pairs] = np.where(
            same_artist[named_pairs],
            scores[named_pairs],
            np.minimum(artist_scores, scores[named_pairs]),
        )
    return scores


def _pair_similarities(firsts: Sequence[str] | np.ndarray, seconds: Sequence[str]) -> np.ndarray:
    """:func:`similarity` of each ``firsts[i]`` to ``seconds[i]``, in one call."""
    if not len(seconds):
        return np.empty(0, dtype=np.float64)
    return 100.0 * cpdist(
        list(firsts), list(seconds), scorer=OSA.normalized_similarity, dtype=np.float64
    )


def written_aliases(display_artist: str) -> list[tuple[str, str]]:
    """(name, alias) key pairs a display artist writes in brackets across scripts
    ("하린솔 (HARINSOL)"); same-script brackets ("Jimin (BTS)") are not aliases."""
    if "(" not in display_artist and "[" not in display_artist:
        return []
    return [
        (name, alias)
        for name, alias in read_artist_side(display_artist).pairs
        if name and alias and name.isascii() != alias.isascii()
    ]


def ngrams(key: str, size: int | None = None) -> frozenset[str]:
    """The distinct n-grams of a key, padded: of ``size`` letters, else trigrams if the key is
    written in ASCII and bigrams if not."""
    if not key:
        return frozenset()
    if size is None:
        size = 3 if key.isascii() else 2
    padded = f"^{key}$"
    if len(padded) <= size:
        return frozenset((padded,))
    return frozenset([padded[i : i + size] for i in range(len(padded) - size + 1)])


class _GramPostings:
    """An inverted index: n-gram -> the owners (songs or artists) whose n-gram set holds it."""

    def __init__(self, gram_sets: Iterable[frozenset[str]]) -> None:
        # Gram codes and owners go straight into typed arrays: a list of every gram string of a
        # 200k-song catalogue would take hundreds of megabytes while the index is built.
        self._code_of: dict[str, int] = {}
        codes = array("i")
        gram_counts = array("i")
        for grams in gram_sets:
            gram_counts.append(len(grams))
            codes.extend(self._code_of.setdefault(gram, len(self._code_of)) for gram in grams)
        self.gram_counts = np.frombuffer(gram_counts, dtype=np.int32)
        self.n_owners = len(self.gram_counts)
        code_array = np.frombuffer(codes, dtype=np.int32)
        owners = np.repeat(np.arange(self.n_owners, dtype=np.int32), self.gram_counts)
        self._members = owners[np.argsort(code_array, kind="stable")]
        self._offsets = np.zeros(len(self._code_of) + 1, dtype=np.int64)
        np.cumsum(np.bincount(code_array, minlength=len(self._code_of)), out=self._offsets[1:])
        self._max_postings = max(64, int(FREQUENT_GRAM_SHARE * self.n_owners))
        self._counts = np.zeros(self.n_owners, dtype=np.int32)  # :func:`_count_runs`' scratch

    def overlap(
        self, grams: frozenset[str], rarest: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Owners sharing at least one of ``grams`` (in no particular order) and how many each
        shares.

        N-grams in more than ``FREQUENT_GRAM_SHARE`` of the owners are skipped while at least
        ``RAREST_GRAMS_KEPT`` rarer ones remain; with ``rarest`` only that many of the rarest
        grams left are counted (a rare gram says more about a key than a frequent one). The
        work is one pass over the postings read: nothing is done per owner of the index.
        """
        codes = self._codes(grams)
        if not len(codes):
            return _NO_OWNERS
        lengths = self._offsets[codes + 1] - self._offsets[codes]
        usable = codes[lengths <= self._max_postings]
        if len(usable) < min(RAREST_GRAMS_KEPT, len(codes)):
            usable = codes[np.argsort(lengths, kind="stable")[:RAREST_GRAMS_KEPT]]
        if rarest is not None and len(usable) > rarest:
            usable_lengths = self._offsets[usable + 1] - self._offsets[usable]
            usable = usable[np.argsort(usable_lengths, kind="stable")[:rarest]]
        return self._count(usable)

    def _codes(self, grams: frozenset[str]) -> np.ndarray:
        codes = np.array([self._code_of[g] for g in grams if g in self._code_of], dtype=np.int64)
        codes.sort()  # a set's order varies between runs; ties between grams must not
        return codes

    def _count(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, owners, counts = _count_runs(
            self._members,
            self._offsets[codes],
            self._offsets[codes + 1],
            np.zeros(len(codes), dtype=np.int64),
            self._counts,
        )
        return owners, counts


def _count_runs(
    members: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    groups: np.ndarray,
    scratch: np.ndarray,
    minimums: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group of posting runs ``members[starts[r]:ends[r]]`` (``groups`` ascending), the
    owners found and in how many of the group's runs each is: (group, owner, count) arrays;
    with ``minimums`` (per run, the same for a group's runs), only the owners in at least that
    many of their group's runs.

    One compiled pass over the entries read (``_kernels.count_runs``), counting in ``scratch``
    (one int32 per owner, zero before and after; the call holds the GIL, so threads may share
    it), instead of sorting them.
    """
    out = np.empty((3, int((ends - starts).sum())), dtype=np.int64)
    found = count_runs(members, starts, ends, groups, scratch, out[0], out[1], out[2], minimums)
    return out[0, :found], out[1, :found], out[2, :found]


class _ArtistReach:
    """The catalogue artists whose score can reach a threshold for a query artist, found by
    scoring only a few names.

    Scoring takes the better of an artist's name and "the" + name, so both forms are indexed by
    their trigrams (the "the" forms without "^th" and "the", which nearly all of them share).
    An edit changes at most four of a string's trigram occurrences (swapping two letters), so a
    name within ``d`` edits of the query shares at least ``4 d`` fewer trigrams than either of
    the two has: only the names that do are scored.
    """

    def __init__(self, names: Sequence[str]) -> None:
        texts = [*names, *("the" + name for name in names)]
        # Forms are numbered shortest first, so the forms whose length is in reach of a query
        # are a range of numbers and each trigram's list, sorted by number, is read as one run.
        by_length = np.argsort([len(text) for text in texts], kind="stable")
        self._forms = np.array(texts, dtype=object)[by_length]
        self._lengths = np.array([len(form) for form in self._forms], dtype=np.int64)
        self._name_of = by_length % len(names) if len(names) else by_length
        self._is_the_form = by_length >= len(names)
        postings = _GramPostings(
            ngrams(form, 3) - _THE_GRAMS if the else ngrams(form, 3)
            for form, the in zip(self._forms.tolist(), self._is_the_form.tolist(), strict=True)
        )
        self._code_of = postings._code_of
        # Each form's distinct trigrams, the "the" forms' two unindexed ones included.
        self._gram_counts = postings.gram_counts + len(_THE_GRAMS) * self._is_the_form
        self._n_names = len(names)
        # (gram, form number) keys, sorted as the postings are.
        self._members = postings._members
        gram_of = np.repeat(np.arange(len(postings._offsets) - 1), np.diff(postings._offsets))
        self._keys = gram_of * len(texts) + self._members
        self._counts = np.zeros(len(texts), dtype=np.int32)  # :func:`_count_runs`' scratch

    def within(self, queries: Sequence[str], threshold: float) -> list[np.ndarray | None]:
        """For each query, the indices (sorted) of the names whose name or "the" + name has a
        :func:`similarity` to it of ``threshold`` or more; None where the bound cannot narrow
        them down (a short query at a low threshold). The queries' trigram lists are read and
        counted together: a request's unknown artists cost one pass, not one each."""
        allowed = 1.0 - threshold / 100.0  # edits allowed per letter of the longer string
        found: list[np.ndarray | None] = [None] * len(queries)
        if allowed >= 1.0:
            return found
        asked, needed, missing, lengths, codes = [], [], [], [], []
        for position, query in enumerate(queries):
            grams = ngrams(query, 3)
            # Shared grams the "the" forms were indexed without.
            not_indexed = len(grams & _THE_GRAMS)
            # A name of up to len / (1 - allowed) letters can be reached: at most this many
            # edits. If even that many could leave no trigram shared, any name may be in reach.
            if len(grams) - 4 * math.floor(allowed * len(query) / (1.0 - allowed) + _ROUNDING) <= (
                not_indexed
            ):
                continue
            found[position] = _NO_INDICES
            asked.append(position)
            needed.append(len(grams))
            missing.append(not_indexed)
            lengths.append(len(query))
            codes.append([c for c in map(self._code_of.get, grams) if c is not None])
        if not asked:
            return found
        length = np.array(lengths, dtype=np.int64)
        # Names in reach are up to floor(allowed * len) letters shorter, or len / (1 - allowed)
        # letters longer: the forms numbered from ``first`` to before ``last``.
        longest = np.floor(length / (1.0 - allowed) + _ROUNDING).astype(np.int64)
        first = np.searchsorted(
            self._lengths, length - np.floor(allowed * length + _ROUNDING).astype(np.int64)
        )
        last = np.searchsorted(self._lengths, longest, "right")
        per_query = np.array([len(c) for c in codes], dtype=np.int64)
        query_of = np.repeat(np.arange(len(asked)), per_query)
        gram = np.fromiter(
            (c for row in codes for c in row), dtype=np.int64, count=int(per_query.sum())
        )
        n_forms = len(self._forms)
        starts = np.searchsorted(self._keys, gram * n_forms + first[query_of])
        ends = np.searchsorted(self._keys, gram * n_forms + last[query_of])
        # A form within ``d`` edits shares at least (its or the query's trigrams) - 4 d of them.
        # First a bound per query (the most edits any form read allows it, the unindexed "the"
        # grams counted as shared), applied while counting, which leaves few pairs; then each
        # form's own.
        most_edits = np.floor(allowed * longest + _ROUNDING).astype(np.int64)
        needed_grams, missing_grams = np.array(needed), np.array(missing)
        least = (needed_grams - missing_grams - 4 * most_edits)[query_of]
        query, owner, shared = _count_runs(
            self._members, starts, ends, query_of, self._counts, least
        )
        shared += missing_grams[query] * self._is_the_form[owner]
        owner_length = self._lengths[owner]
        edits = np.floor(allowed * np.maximum(owner_length, length[query]) + _ROUNDING)
        near = (np.abs(owner_length - length[query]) <= edits) & (
            shared >= np.maximum(needed_grams[query], self._gram_counts[owner]) - 4 * edits
        )
        query, owner = query[near], owner[near]
        # Every (query, form) pair left is scored in one call; a name counts once per query.
        asked_text = np.array([queries[position] for position in asked], dtype=object)
        scores = _pair_similarities(asked_text[query], self._forms[owner].tolist())
        passing = scores >= threshold
        reached = np.unique(query[passing] * self._n_names + self._name_of[owner[passing]])
        query, name = np.divmod(reached, self._n_names)
        bounds = np.searchsorted(query, np.arange(len(asked) + 1))
        for row, position in enumerate(asked):
            found[position] = name[bounds[row] : bounds[row + 1]]
        return found


def _most_shared(
    owners: np.ndarray, shared: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The owners sharing at least as many n-grams as the ``count``-th most sharing one: a
    superset of any ``count`` best ranked by shared n-grams first, and often far fewer."""
    if len(owners) <= count:
        return owners, shared
    at_least = np.cumsum(np.bincount(shared)[::-1])[::-1]  # owners sharing s or more, by s
    floor = int(np.flatnonzero(at_least >= count)[-1])
    if at_least[floor] == len(owners):
        return owners, shared
    kept = shared >= floor
    return owners[kept], shared[kept]


def _best(owners: np.ndarray, keys: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` owners with the smallest keys, in key order."""
    if len(owners) > count:
        chosen = np.argpartition(keys, count - 1)[:count]
        owners, keys = owners[chosen], keys[chosen]
    return owners[np.argsort(keys, kind="stable")]


class SongIndex:
    """Candidate lookup and prefix search over a catalogue's song keys; built once per model."""

    def __init__(
        self,
        keys: Sequence[str],
        display_artists: Sequence[str],
        counts: np.ndarray,
        identify_artist: Callable[[str], str],
    ) -> None:
        n_items = len(keys)
        self.n_items = n_items
        parts = [key_parts(key) for key in keys]
        artists = [
            artist if KEY_SEPARATOR in key else (identify_artist(shown) if shown else "")
            for (artist, _), key, shown in zip(parts, keys, display_artists, strict=True)
        ]
        self.titles = [title for _, title in parts]
        self._title_array = np.array(self.titles, dtype=object)
        del parts
        # Rank 0 is the most popular song; ties keep catalogue order.
        self.popularity_rank = np.empty(n_items, dtype=np.int64)
        self.popularity_rank[np.argsort(-np.asarray(counts), kind="stable")] = np.arange(n_items)

        artist_codes, artist_names = pd.factorize(pd.Series(artists, dtype=object), sort=True)
        del artists
        self.artist_of = artist_codes.astype(np.int64)
        self.artist_names: list[str] = artist_names.tolist()
        self._artist_name_array = np.array(self.artist_names, dtype=object)
        self._artist_id = {name: code for code, name in enumerate(self.artist_names)}
        # Names a display artist writes beside its key name ("해소결 (HAESOGYEOL)") find that
        # artist too, where the package's alias table did not learn them.
        for code, shown in zip(self.artist_of.tolist(), display_artists, strict=True):
            for pair in written_aliases(shown):
                for name in pair:
                    self._artist_id.setdefault(name, code)
        by_artist = np.lexsort((self.popularity_rank, self.artist_of))
        self._artist_songs = by_artist
        self._artist_offsets = np.zeros(len(artist_names) + 1, dtype=np.int64)
        np.cumsum(
            np.bincount(self.artist_of, minlength=len(artist_names)), out=self._artist_offsets[1:]
        )
        self._artist_grams = _GramPostings(ngrams(name) for name in self.artist_names)
        self._title_grams = _GramPostings(ngrams(title) for title in self.titles)
        self._artist_reach = _ArtistReach(self.artist_names)
        self._kept_songs: dict[tuple[str, float, int], np.ndarray | None] = {}

        # Prefix search: songs under their title and their artist and title together ("iu pal"
        # finds "iu|palette"); artists under their key and display names ("아이유" finds
        # "아이유 (IU)").
        song_texts = sorted(
            (text, item)
            for item, (code, title) in enumerate(
                zip(artist_codes.tolist(), self.titles, strict=True)
            )
            for text in {title, self.artist_names[code] + title}
        )
        self._song_prefixes = [text for text, _ in song_texts]
        self._song_prefix_items = np.array([item for _, item in song_texts], dtype=np.int64)
        del song_texts
        shown_names = {
            (normalize_name(shown), code)
            for shown, code in set(zip(display_artists, artist_codes.tolist(), strict=True))
        }
        artist_texts = sorted(
            {(name, code) for code, name in enumerate(self.artist_names)} | shown_names
        )
        self._artist_prefixes = [text for text, _ in artist_texts if text]
        self._artist_prefix_codes = np.array(
            [code for text, code in artist_texts if text], dtype=np.int64
        )

    def artist_of_song(self, item: int) -> str:
        """The artist key of a song ("" when it has none)."""
        return self.artist_names[self.artist_of[item]]

    def artist_songs(self, artist: str) -> np.ndarray:
        """Songs by this artist key (or a name written beside it), most popular first."""
        code = self._artist_id.get(artist)
        if code is None:
            return np.empty(0, dtype=np.int64)
        return self._artist_songs[self._artist_offsets[code] : self._artist_offsets[code + 1]]

    def candidates(self, artist: str, title: str, limit: int) -> np.ndarray:
        """At most ``limit`` catalogue songs worth scoring against a query's key parts.

        The artist route fills up to half of ``limit`` (all of it when the title route finds
        nothing), the title route the rest; neither reads more than the n-gram lists involved.
        """
        if limit <= 0 or not title:
            return np.empty(0, dtype=np.int64)
        title_owners, title_shared = self._title_grams.overlap(ngrams(title), TITLE_GRAMS_COUNTED)
        by_artist = self._songs_of_near_artists(artist, title)
        quota = limit if not len(title_owners) else max(1, limit // 2)
        if len(by_artist) > quota:
            shared = self._shared_by(by_artist, title_owners, title_shared)
            by_artist = _best(by_artist, self._rank_keys(by_artist, shared), quota)
        wanted = limit + len(by_artist)
        title_owners, title_shared = _most_shared(title_owners, title_shared, wanted)
        by_title = _best(title_owners, self._rank_keys(title_owners, title_shared), wanted)
        chosen = np.concatenate([by_artist, by_title])
        _, first = np.unique(chosen, return_index=True)
        return chosen[np.sort(first)][:limit]

    def best_matches(
        self, queries: Sequence[tuple[str, str]], threshold: float, limit: int
    ) -> list[Candidate | None]:
        """For each (artist, title) query, the best song scoring ``threshold`` or more (ties:
        the more popular), if any.

        A song by another artist than the query's scores no higher than the similarity of the
        two artists, so only songs of the query's own artist (by key or alias) and of the
        artists within reach of its name can match: none when there are none, all of them when
        they are at most ``limit`` songs; otherwise the index's candidates are scored. The
        reach of the queries' unknown artists is worked out for all of them at once.
        """
        unknown = list(dict.fromkeys(a for a, _ in queries if a and a not in self._artist_id))
        unknown_reach = dict(
            zip(unknown, self._artist_reach.within(unknown, threshold), strict=True)
        )
        found: list[np.ndarray] = []
        knowns: list[int] = []
        for artist, title in queries:
            known = self._artist_id.get(artist, -1) if artist else -1
            songs = None
            # A known artist with more than ``limit`` songs of its own has more in reach too.
            if artist and known < 0:
                reach = unknown_reach[artist]
                songs = None if reach is None else self._songs_of(reach, limit)
            elif artist and self._artist_size(known) <= limit:
                songs = self._known_songs(artist, known, threshold, limit)
            if songs is None:
                songs = self.candidates(artist, title, limit)
            found.append(songs)
            knowns.append(known)
        return self._best_scoring(queries, found, knowns, threshold)

    def _artist_size(self, code: int) -> int:
        return int(self._artist_offsets[code + 1] - self._artist_offsets[code])

    def _known_songs(
        self, artist: str, known: int, threshold: float, limit: int
    ) -> np.ndarray | None:
        """The songs of a known name's artist and of the artists in its reach, or None when
        they are more than ``limit`` or the reach cannot be narrowed down. Kept (read-only), as
        names are few next to requests and the popular ones, which have many namesakes to
        score, come back often."""
        kept = self._kept_songs.get((artist, threshold, limit), _NOT_KEPT)
        if kept is _NOT_KEPT:
            reach = self._artist_reach.within([artist], threshold)[0]
            kept = None if reach is None else self._songs_of(np.union1d(reach, [known]), limit)
            if kept is not None:
                kept.flags.writeable = False
            self._kept_songs[(artist, threshold, limit)] = kept
        return kept

    def _songs_of(self, artists: np.ndarray, limit: int) -> np.ndarray | None:
        """Every song of these artist codes, or None when they have more than ``limit``."""
        if not len(artists):  # most artists the catalogue lacks have none in reach
            return _NO_INDICES
        begins, ends = self._artist_offsets[artists], self._artist_offsets[artists + 1]
        if int((ends - begins).sum()) > limit:
            return None
        return np.concatenate(
            [self._artist_songs[b:e] for b, e in zip(begins.tolist(), ends.tolist(), strict=True)]
            or [np.empty(0, dtype=np.int64)]
        )

    def _best_scoring(
        self,
        queries: Sequence[tuple[str, str]],
        songs: list[np.ndarray],
        knowns: list[int],
        threshold: float,
    ) -> list[Candidate | None]:
        """Each query's best song among its ``songs`` (ties: the more popular), every pair of
        the queries scored together."""
        found: list[Candidate | None] = [None] * len(queries)
        sizes = np.array([len(items) for items in songs], dtype=np.int64)
        if not sizes.sum():
            return found
        items = np.concatenate(songs)
        query_of = np.repeat(np.arange(len(queries)), sizes)
        codes, artist_of = np.unique(self.artist_of[items], return_inverse=True)
        artist_of = artist_of.reshape(-1)
        scores = score_candidates(
            [artist for artist, _ in queries],
            [title for _, title in queries],
            query_of,
            self._artist_name_array[codes].tolist(),
            artist_of,
            self._title_array[items].tolist(),
            codes[artist_of] == np.array(knowns, dtype=np.int64)[query_of],
        )
        passing = np.flatnonzero(scores >= threshold)
        ranked = passing[
            np.lexsort((self.popularity_rank[items[passing]], -scores[passing], query_of[passing]))
        ]
        asking = query_of[ranked]
        for best in ranked[np.r_[True, asking[1:] != asking[:-1]]].tolist() if len(ranked) else []:
            found[int(query_of[best])] = Candidate(int(items[best]), float(scores[best]))
        return found

    def prefix_matches(self, prefix: str, limit: int) -> np.ndarray:
        """The ``limit`` most popular songs whose title, artist and title, artist or display
        artist starts with ``prefix`` (in key form, as :func:`normalize_name` writes it)."""
        if not prefix or limit <= 0:
            return np.empty(0, dtype=np.int64)
        start, stop = _prefix_range(self._song_prefixes, prefix)
        by_song = self._song_prefix_items[start:stop]
        start, stop = _prefix_range(self._artist_prefixes, prefix)
        codes = np.unique(self._artist_prefix_codes[start:stop])
        # Each artist's songs are stored most popular first: its first ``limit`` are enough.
        begins = self._artist_offsets[codes]
        sizes = np.minimum(self._artist_offsets[codes + 1] - begins, limit)
        steps = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        by_artist = self._artist_songs[np.repeat(begins, sizes) + steps]
        items = np.unique(np.concatenate([by_song, by_artist]))
        return _best(items, self.popularity_rank[items], limit)

    def _songs_of_near_artists(self, artist: str, title: str) -> np.ndarray:
        if artist and artist in self._artist_id:
            return self.artist_songs(artist)
        probe = artist or title
        grams = ngrams(probe)
        owners, shared = self._artist_grams.overlap(grams)
        if not len(owners):
            return np.empty(0, dtype=np.int64)
        order = np.argsort(owners)  # equally close artists: the first in key order
        owners, shared = owners[order], shared[order]
        sizes = self._artist_grams.gram_counts[owners]
        if artist:
            closeness = 2.0 * shared / (len(grams) + sizes)
            near = closeness >= NEAR_ARTIST_DICE
        else:
            closeness = shared / np.maximum(sizes, 1)
            near = closeness >= GLUED_ARTIST_SHARE
        owners, closeness = owners[near], closeness[near]
        chosen = _best(owners, -closeness, NEAR_ARTISTS)
        return np.concatenate(
            [
                self._artist_songs[self._artist_offsets[code] : self._artist_offsets[code + 1]]
                for code in chosen.tolist()
            ]
            or [np.empty(0, dtype=np.int64)]
        )

    def _shared_by(self, songs: np.ndarray, owners: np.ndarray, shared: np.ndarray) -> np.ndarray:
        """How many n-grams each of ``songs`` (by a few artists) shares, from the title route's
        ``owners`` and ``shared`` (0 for songs not among them). Only the owners by those
        artists are looked up: the title route may have found tens of thousands."""
        artists = np.unique(self.artist_of[songs])
        mine = np.flatnonzero(np.isin(self.artist_of[owners], artists))
        order = np.argsort(songs)
        found = order[np.searchsorted(songs, owners[mine], sorter=order)]
        counted = np.zeros(len(songs), dtype=np.int64)
        counted[found] = shared[mine]
        return counted

    def _rank_keys(self, items: np.ndarray, shared: np.ndarray) -> np.ndarray:
        """Sort keys: more shared n-grams first, then the more popular song."""
        return -shared * (self.n_items + 1) + self.popularity_rank[items]


def _prefix_range(texts: list[str], prefix: str) -> tuple[int, int]:
    """Start and end of the entries of sorted ``texts`` that start with ``prefix``."""
    start = bisect.bisect_left(texts, prefix)
    return start, bisect.bisect_left(texts, prefix + _AFTER_ANY_PREFIX, lo=start)
