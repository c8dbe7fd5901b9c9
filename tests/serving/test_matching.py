"""Free text to catalogue items: key, parser with aliases, fuzzy threshold, search order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from segue.data.song_text import normalize_name
from segue.sample.matching_cases import labelled_catalogue, read_cases
from segue.serving import matching, song_index
from segue.serving.matching import MatchBudget, SongMatcher
from segue.settings import ServingSettings

from .support import next_song_package, settings_with

REPO = Path(__file__).resolve().parents[2]


def matcher(threshold: float = 85.0, budget: MatchBudget | None = None) -> SongMatcher:
    package = next_song_package("most-popular")
    return SongMatcher(package.items, package.aliases, threshold, budget=budget)


def catalogue(
    artists: Sequence[str], titles: Sequence[str], counts: Sequence[int] | None = None
) -> pd.DataFrame:
    """Items as a package holds them, keyed the way the song parser keys "artist - title"."""
    return pd.DataFrame(
        {
            "item": np.arange(len(titles)),
            "key": [f"{normalize_name(a)}|{normalize_name(t)}" for a, t in zip(artists, titles)],
            "artist": list(artists),
            "title": list(titles),
            "count": list(counts) if counts is not None else [1] * len(titles),
        }
    )


def count_scored_songs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the catalogue songs fuzzy matching scores from now on."""
    scored = {"songs": 0}
    original = song_index.score_candidates

    def counted(*args: Any) -> Any:
        scored["songs"] += len(args[5])  # the titles scored
        return original(*args)

    monkeypatch.setattr(song_index, "score_candidates", counted)
    return scored


def count_similarity_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the search box's similarity calls from now on."""
    calls = {"calls": 0}
    original = matching.similarity

    def counted(first: str, second: str) -> float:
        calls["calls"] += 1
        return original(first, second)

    monkeypatch.setattr(matching, "similarity", counted)
    return calls


def test_exact_key_wins() -> None:
    assert matcher().match("iu|palette") == 1


def test_parser_with_aliases_finds_the_ingested_key() -> None:
    songs = matcher()
    assert songs.match("03:10 아이유 - 밤편지 [Official MV]") == 0
    assert songs.match("IU – 밤편지 (feat. Nobody)") == 0
    assert songs.match("잔나비 - 주저하는 연인들을 위해") == 6


def test_fuzzy_match_respects_the_threshold() -> None:
    assert matcher().match("Adele - Someone Like Yuo") == 12
    assert matcher(threshold=99.0).match("Adele - Someone Like Yuo") is None
    assert matcher().match("Metallica - One") is None
    assert matcher().match("   ") is None


def test_match_all_keeps_order_and_lists_misses() -> None:
    result = matcher().match_all(["BTS - Butter", "nothing at all here", "iu|palette"])
    assert result.items == [4, 1]
    assert result.unmatched == ["nothing at all here"]


def test_key_lookup_never_guesses() -> None:
    result = matcher().lookup_keys(["iu|palette", "IU - Palette"])
    assert result.items == [1] and result.unmatched == ["IU - Palette"]


def test_search_puts_popular_prefix_matches_first_then_fuzzy() -> None:
    songs = matcher()
    assert songs.search("iu", 3) == [1, 2, 0]  # Palette and Blueming are in more playlists
    assert songs.search("yello", 1) == [8]
    assert songs.search("Someone Lik You", 2)[0] == 12
    assert songs.search("!!!", 5) == []


def test_artist_identity_resolves_aliases() -> None:
    assert matcher().identify_artist("아이유") == "iu"
    assert matcher().identify_artist("Cold Play") == "coldplay"


# -- bounded cost and no false matches (issue 11) ----------------------------------------------


def test_songs_not_in_the_catalogue_stay_unmatched() -> None:
    songs = matcher()
    assert songs.match("Zq417 Summer - Golden City Night") is None
    assert songs.match("Zzyzx Qqq - Unknown Song Nobody Has") is None
    assert songs.match("Zq417 Summer - Yellow") is None  # a catalogue title by a stranger
    assert songs.match("Coldplay - Yellow (Remix)") is None  # a version the catalogue lacks
    assert songs.match("JANNABI - 주저하는 연인들을 위해 (Live)") is None  # so is a live recording
    result = songs.match_all(["Zq417 Summer - Golden City Night", "BTS - Butter"])
    assert result.items == [4] and result.unmatched == ["Zq417 Summer - Golden City Night"]


def test_typo_feat_alias_and_decoration_variants_still_match() -> None:
    songs = matcher()
    assert songs.match("Coldpaly - Yellow") == 8
    assert songs.match("Coldplay - Viva La Vdia [Official Video]") == 10
    assert matcher(threshold=83.0).match("Coldplay - Fix Yuo") == 9  # one edit in six letters
    assert songs.match("Teh Coldplay - Fix You") == 9
    assert songs.match("Adele - Hello (feat. Someone) [Official Video]") == 11
    assert songs.match("BTS ft. Coldplay - Dynamite") == 3
    assert songs.match("Someone Like You") == 12  # no artist written
    assert songs.match("coldplay yellow") == 8  # artist glued to the title


def test_a_request_of_500_unknown_songs_stops_fuzzy_work_at_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scored = count_scored_songs(monkeypatch)
    budget = MatchBudget(max_candidates=5, max_fuzzy=20, milliseconds=60_000.0)
    songs = matcher(budget=budget)
    raws = [f"Zq{number} Summer - Golden City Night {number}" for number in range(500)]
    result = songs.match_all(raws)
    assert result.items == [] and result.unmatched == raws
    assert (result.fuzzy_tried, result.fuzzy_skipped) == (20, 480)
    assert scored["songs"] <= 20 * 5


def test_a_spent_time_budget_leaves_keys_and_parsed_keys_working() -> None:
    songs = matcher(budget=MatchBudget(milliseconds=0.0))
    result = songs.match_all(["iu|palette", "Coldpaly - Yellow", "BTS - Butter"])
    assert result.items == [1, 4] and result.unmatched == ["Coldpaly - Yellow"]
    assert (result.fuzzy_tried, result.fuzzy_skipped) == (0, 1)


def test_a_repeated_unknown_song_is_tried_once() -> None:
    result = matcher().match_all(["Coldpaly - Yellow"] * 5 + ["Nobody - Nothing"] * 5)
    assert result.items == [8] * 5 and len(result.unmatched) == 5
    assert result.fuzzy_tried == 2


def test_over_long_strings_never_reach_fuzzy_matching() -> None:
    result = matcher().match_all(["Coldplay - " + "Yellow " * 1500])
    assert result.items == [] and (result.fuzzy_tried, result.fuzzy_skipped) == (0, 0)


def test_the_budget_comes_from_the_serving_settings() -> None:
    assert MatchBudget.from_settings(ServingSettings()) == MatchBudget()
    assert ServingSettings().fuzzy_threshold == matching.DEFAULT_FUZZY_THRESHOLD
    serving = settings_with("serving.match_candidates=7", "serving.max_fuzzy_per_request=3").serving
    assert MatchBudget.from_settings(serving) == MatchBudget(7, 3, serving.match_budget_ms)


def test_the_index_never_scores_more_than_its_candidate_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 400 artists sharing one title and two artists sharing a name with the query's.
    artists = [f"Band {number:03d}" for number in range(400)] + ["Golden", "Rain Golden"]
    songs = SongMatcher(catalogue(artists, ["Golden Rain"] * len(artists)), budget=MatchBudget(8))
    scored = count_scored_songs(monkeypatch)
    for query in ["Band 123 - Golden Rian", "Golden Rain", "Gold - Golden Rain", "Zq - Rain"]:
        before = scored["songs"]
        songs.match(query)
        assert scored["songs"] - before <= 8, query
    assert len(songs.index.candidates("band123", "goldenrain", 8)) == 8
    assert songs.match("Band 123 - Golden Rian") == 123  # the artist route finds it
    assert songs.match("Bnad 123 - Golden Rain") == 123  # near artists by n-grams


def test_search_lists_popular_prefix_matches_first_without_scanning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    titles = ["Golden Hour", "Golden Rain", "Goldfish", "Silver Rain", "Old Gold"]
    frame = catalogue(["A", "B", "C", "D", "E"], titles, counts=[5, 50, 20, 99, 70])
    songs = SongMatcher(frame, budget=MatchBudget(max_candidates=3))
    scored = count_similarity_calls(monkeypatch)
    assert songs.search("gold", 5)[:3] == [1, 2, 0]  # title prefixes, most played first
    assert songs.search("b golden", 1) == [1]  # artist and title together
    assert scored["calls"] <= 3 * 3  # the fuzzy fill-in scores only the index's candidates
    assert songs.search("Golden Rian", 1) == [1]


def test_the_labelled_set_keeps_false_matches_under_one_percent() -> None:
    labelled = labelled_catalogue(REPO / "tests" / "data" / "test_song_parser.py")
    cases = read_cases(REPO / "tests" / "fixtures" / "matching" / "labelled.jsonl")
    songs = SongMatcher(labelled.items, labelled.aliases, ServingSettings().fuzzy_threshold)
    keys = labelled.items["key"].tolist()
    catalogue_keys = set(keys)
    found = {case.text: songs.match(case.text) for case in cases}
    negatives = [case for case in cases if case.expected is None]
    positives = [case for case in cases if case.expected is not None]
    assert all(case.expected in catalogue_keys for case in positives)
    false = [case.text for case in negatives if found[case.text] is not None]
    right = [
        case
        for case in positives
        if found[case.text] is not None and keys[found[case.text]] == case.expected
    ]
    wrong = [
        case.text
        for case in positives
        if found[case.text] is not None and keys[found[case.text]] != case.expected
    ]
    assert len(false) < 0.01 * len(negatives), false
    assert not wrong
    assert len(right) >= 0.95 * len(positives)


def test_gram_overlap_counts_the_grams_each_key_shares_with_the_query() -> None:
    rng = np.random.default_rng(7)
    keys = ["".join(rng.choice(list("abcdef"), size=int(rng.integers(1, 9)))) for _ in range(60)]
    # 60 keys: no gram is frequent enough to skip.
    postings = song_index._GramPostings(map(song_index.ngrams, keys))
    for query in ["abcab", "fed", "a", "zzz", keys[3], keys[17] + "x"]:
        grams = song_index.ngrams(query)
        owners, shared = postings.overlap(grams)
        expected = {
            owner: len(grams & song_index.ngrams(key))
            for owner, key in enumerate(keys)
            if grams & song_index.ngrams(key)
        }
        assert dict(zip(owners.tolist(), shared.tolist(), strict=True)) == expected, query
        assert len(owners) == len(expected), query  # each owner once
        # Counting only the rarest grams: never more than that many, and only shared ones.
        few_owners, few_shared = postings.overlap(grams, rarest=2)
        assert set(few_owners.tolist()) <= set(expected) and (few_shared <= 2).all(), query


def test_artist_reach_finds_exactly_the_artists_scoring_at_the_threshold() -> None:
    # Names and queries from few letters, so many are a few edits apart; some queries are
    # names with a swap, a typo, a letter more or less, or a "the" in front.
    rng = np.random.default_rng(3)
    letters = list("abcdeht")
    names = ["".join(rng.choice(letters, size=int(rng.integers(1, 12)))) for _ in range(400)]
    names += ["하차러", "아이유", "velvetradio", "beatles"]
    reach = song_index._ArtistReach(names)
    queries = ["".join(rng.choice(letters, size=int(rng.integers(1, 14)))) for _ in range(300)]
    for name in names[:150]:
        edited = list(name)
        spot = int(rng.integers(len(edited)))
        edited[spot] = str(rng.choice(letters))
        if len(edited) > 2:
            edited[0], edited[1] = edited[1], edited[0]
        queries += ["".join(edited), name + "e", name[1:], "the" + name, "teh" + name]
    queries += ["하차리", "velvetradios", "thebeatles", "tehbeatles", "zq417summer"]
    narrowed = 0
    for threshold in (83.0, 70.0):
        # All queries in one call, as a request's unknown artists go; one at a time agrees.
        together = reach.within(queries, threshold)
        for query, found in zip(queries, together, strict=True):
            alone = reach.within([query], threshold)[0]
            assert (found is None) == (alone is None), query
            if found is None:  # the bound cannot tell: every artist stays a candidate
                continue
            assert found.tolist() == alone.tolist(), query
            narrowed += 1
            expected = [
                code
                for code, name in enumerate(names)
                if max(
                    song_index.similarity(query, name), song_index.similarity(query, "the" + name)
                )
                >= threshold
            ]
            assert found.tolist() == expected, (query, threshold)
    assert narrowed > len(queries)  # most queries are narrowed down at both thresholds


def test_a_misspelt_title_is_found_among_many_sharing_its_common_words() -> None:
    # 3,000 titles made of the same few words, most more popular than the one asked for.
    rng = np.random.default_rng(11)
    words = ["golden", "night", "city", "summer", "rain", "love", "heart", "dream"]
    titles = [" ".join(rng.choice(words, size=3)) + f" {number}" for number in range(3000)]
    titles.append("Golden Lantern Night")
    artists = [f"Band {number % 700}" for number in range(len(titles))]
    counts = [100] * 3000 + [1]
    songs = SongMatcher(catalogue(artists, titles, counts), budget=MatchBudget(max_candidates=20))
    assert songs.match("Golden Lantren Night") == 3000  # no artist, one typo
    assert songs.match("Band 200 - Golden Lanten Night") == 3000  # artist and a missing letter
    assert songs.match("Unknown Band - Golden Night Summer") is None
    assert len(songs.index.candidates("", "goldenlantrennight", 20)) <= 20


def test_a_known_artist_with_more_songs_than_the_cap_skips_the_reach_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its own songs already exceed what may be scored, so the artists near its name cannot
    # change the route: the index's candidates are scored without working out that reach.
    titles = [f"Song Number {number}" for number in range(60)] + ["Paper Lanterns"]
    artists = ["Big Band"] * 60 + ["Small Band"]
    songs = SongMatcher(catalogue(artists, titles), budget=MatchBudget(max_candidates=20))
    asked: list[str] = []
    original = song_index._ArtistReach.within

    def counted(self: Any, queries: Sequence[str], threshold: float) -> Any:
        asked.extend(queries)
        return original(self, queries, threshold)

    monkeypatch.setattr(song_index._ArtistReach, "within", counted)
    assert songs.match("Big Band - Song Numbr 42") == 42
    assert asked == []
    assert songs.match("Small Band - Paper Lantrens") == 60
    assert asked == ["smallband"]


@pytest.mark.parametrize("seed", range(5))
def test_the_title_route_ranks_as_if_every_owner_it_found_were_ranked(seed: int) -> None:
    # Many songs sharing one or two of a query's title n-grams, few sharing more: the owners
    # kept for ranking must hold every one of the best, whatever the count asked.
    rng = np.random.default_rng(seed)
    owners = rng.permutation(5000)[:3000]
    shared = rng.choice([1, 1, 1, 2, 2, 3, 4], size=len(owners))
    rank = rng.permutation(5000)
    for count in [1, 5, 40, 400, 2000, 3000, 4000]:
        kept, kept_shared = song_index._most_shared(owners, shared, count)
        best = owners[np.lexsort((rank[owners], -shared))][:count]
        assert set(best.tolist()) <= set(kept.tolist()), count
        # Those kept: every owner sharing as many as the count-th most sharing one, as found.
        floor = np.sort(shared)[::-1][min(count, len(owners)) - 1]
        assert kept.tolist() == owners[shared >= floor].tolist(), count
        assert kept_shared.tolist() == shared[shared >= floor].tolist(), count


def test_an_artists_songs_get_the_title_route_counts_of_their_own() -> None:
    artists = [f"Band {number % 7}" for number in range(70)]
    songs = SongMatcher(catalogue(artists, [f"Song {n}" for n in range(70)]))
    index = songs.index
    rng = np.random.default_rng(2)
    by_artist = np.concatenate([index.artist_songs("band3"), index.artist_songs("band5")])
    owners = rng.permutation(70)[:40]
    shared = rng.integers(1, 5, 40)
    counted = index._shared_by(by_artist, owners, shared)
    found = dict(zip(owners.tolist(), shared.tolist()))
    assert counted.tolist() == [found.get(song, 0) for song in by_artist.tolist()]
