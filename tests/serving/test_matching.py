"""Free text to catalogue items: key, parser with aliases, fuzzy threshold, search order."""

from __future__ import annotations

from .support import next_song_package

from segue.serving.matching import SongMatcher


def matcher(threshold: float = 85.0) -> SongMatcher:
    package = next_song_package("most-popular")
    return SongMatcher(package.items, package.aliases, threshold)


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
