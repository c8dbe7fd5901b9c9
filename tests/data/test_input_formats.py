"""Input formats: telling playlists and each MovieLens layout apart from the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from segue.data.input_formats import InputError, InputFormat, detect_format


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("playlists.json", InputFormat.PLAYLIST_JSON),
        ("playlists.jsonl", InputFormat.PLAYLIST_JSONL),
        ("mpd.slice.0-2.json", InputFormat.SPOTIFY_MPD),
        ("movielens-csv", InputFormat.MOVIELENS_CSV),
        ("movielens-csv/ratings.csv", InputFormat.MOVIELENS_CSV),
        ("ml-100k", InputFormat.MOVIELENS_100K),
        ("ml-100k/u.data", InputFormat.MOVIELENS_100K),
        ("ml-1m", InputFormat.MOVIELENS_1M),
        ("ml-1m/ratings.dat", InputFormat.MOVIELENS_1M),
    ],
)
def test_format_is_detected_from_the_path(
    name: str, expected: InputFormat, ingest_fixtures: Path
) -> None:
    assert detect_format(ingest_fixtures / name) == expected


def test_unknown_paths_are_refused_with_the_path_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(InputError, match=r"notes\.txt: unknown format"):
        detect_format(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="no such file"):
        detect_format(tmp_path / "missing.json")
    with pytest.raises(InputError, match=r"ratings\.csv \+ movies\.csv"):
        detect_format(tmp_path)
