"""The text rules of song strings: key forms of names and titles."""

from __future__ import annotations

import pytest

from segue.data.song_text import normalize_artist, normalize_name


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Simon & Garfunkel", "simonandgarfunkel"),
        ("Florence + the Machine", "florenceandthemachine"),
        ("Beyoncé", "beyonce"),
        ("P!nk", "pnk"),
        ("방탄 소년단", "방탄소년단"),
        ("AC/DC", "acdc"),
    ],
)
def test_normalize_name(name: str, key: str) -> None:
    assert normalize_name(name) == key
    assert normalize_name(key) == key


@pytest.mark.parametrize(
    ("name", "key"),
    [("The Beatles", "beatles"), ("the  Velvet Harbors", "velvetharbors"), ("The", "the")],
)
def test_normalize_artist_also_drops_a_leading_the(name: str, key: str) -> None:
    assert normalize_artist(name) == key
