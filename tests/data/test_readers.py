"""Raw-file readers: format detection, record locations, recovery from cut and broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from segue.data.readers import (
    InputError,
    InputFormat,
    InvalidSong,
    PlaylistRecord,
    detect_format,
    find_playlist_files,
    read_playlist_file,
    read_ratings,
)
from segue.data.rejects import Rejection


def read_all(path: Path) -> list[PlaylistRecord | Rejection]:
    return list(read_playlist_file(path, detect_format(path), progress=False))


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


def test_a_playlist_directory_lists_its_json_files_and_refuses_ratings(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    for name in ("b.jsonl", "a.json", "notes.txt"):
        (tmp_path / name).write_text("[]" if name.endswith(".json") else "", encoding="utf-8")
    assert [path.name for path, _ in find_playlist_files(tmp_path)] == ["a.json", "b.jsonl"]
    with pytest.raises(InputError, match="use `segue ingest ratings`"):
        find_playlist_files(ingest_fixtures / "movielens-csv" / "ratings.csv")


def test_json_array_records_carry_their_index(ingest_fixtures: Path) -> None:
    records = read_all(ingest_fixtures / "playlists.json")
    assert [(r.playlist_id, r.index, r.line) for r in records] == [
        ("vid-a", 0, None),
        ("vid-b", 1, None),
        ("vid-c", 2, None),
    ]
    assert records[0].songs[1] == "아이유 (IU) - 밤편지"


def test_json_lines_records_carry_their_line_and_bad_lines_are_rejected(
    ingest_fixtures: Path,
) -> None:
    items = read_all(ingest_fixtures / "playlists.jsonl")
    located = [
        (type(item).__name__, item.line, getattr(item, "stage", None), getattr(item, "reason", ""))
        for item in items
    ]
    assert [(kind, line, stage) for kind, line, stage, _ in located] == [
        ("PlaylistRecord", 1, None),
        ("Rejection", 3, "read"),
        ("Rejection", 4, "parse"),
        ("Rejection", 5, "parse"),
        ("PlaylistRecord", 6, None),
        ("Rejection", 7, "parse"),
        ("Rejection", 8, "parse"),
        ("PlaylistRecord", 9, None),
        ("PlaylistRecord", 10, None),
    ]
    reasons = {line: reason for _, line, _, reason in located}
    assert reasons[3].startswith("invalid JSON")
    assert reasons[4] == "the record has no 'songs' field"
    assert reasons[5] == "songs must be an array of strings, got string"
    assert reasons[7] == "a playlist must be a JSON object, got array"
    assert reasons[8] == "video_id is missing or null"
    assert items[-1].songs[0] == "\ud800 - Broken"


def test_a_cut_json_array_keeps_the_complete_records_before_the_cut(ingest_fixtures: Path) -> None:
    items = read_all(ingest_fixtures / "truncated.json")
    assert [item.playlist_id for item in items[:3]] == ["t1", "t2", "t3"]
    cut = items[3]
    assert isinstance(cut, Rejection)
    assert (cut.stage, cut.index, cut.line) == ("read", 3, 5)
    assert cut.reason.startswith("record 3 is not complete JSON (Unterminated string")
    assert cut.reason.endswith("it and anything after it are lost")
    assert cut.record.startswith('{"video_id": "t4"')
    assert len(items) == 4


def test_a_json_file_that_is_not_an_array_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    path.write_text("42", encoding="utf-8")
    (item,) = read_playlist_file(path, InputFormat.PLAYLIST_JSON, progress=False)
    assert isinstance(item, Rejection)
    assert item.reason == "the top level must be array"


def test_undecodable_bytes_in_json_lines_reject_that_line(tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(
        b'{"video_id": "ok", "songs": ["A - B"]}\n{"video_id": "bad", "songs": ["\xff - x"]}\n'
    )
    good, bad = read_playlist_file(path, InputFormat.PLAYLIST_JSONL, progress=False)
    assert isinstance(good, PlaylistRecord)
    assert isinstance(bad, Rejection)
    assert (bad.line, bad.stage) == (2, "read")
    assert bad.reason.startswith("not valid UTF-8")


def test_spotify_tracks_become_artist_title_strings(ingest_fixtures: Path) -> None:
    first, second, broken = read_all(ingest_fixtures / "mpd.slice.0-2.json")
    assert first.playlist_id == "0"
    assert first.songs[1] == "Britney Spears - Toxic"
    assert isinstance(second.songs[1], InvalidSong)
    assert second.songs[1].reason == "track artist_name must be a non-empty string"
    assert isinstance(broken, Rejection)
    assert broken.reason == "tracks must be an array, got string"
    assert broken.index == 2


def test_a_cut_spotify_slice_keeps_the_complete_playlists(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    text = (ingest_fixtures / "mpd.slice.0-2.json").read_text(encoding="utf-8")
    cut = tmp_path / "mpd.slice.cut.json"
    cut.write_text(text[: text.index('"name": "Pop"')], encoding="utf-8")
    items = read_all(cut)
    assert isinstance(items[0], PlaylistRecord)
    assert isinstance(items[1], Rejection) and items[1].index == 1


def test_movielens_csv_ratings_are_typed_and_bad_rows_located(ingest_fixtures: Path) -> None:
    table = read_ratings(ingest_fixtures / "movielens-csv", progress=False)
    assert table.n_records == 9
    assert table.ratings["line"].tolist() == [2, 3, 4, 5, 6, 10]
    assert table.ratings["rating"].tolist() == [4.0, 2.0, 5.0, 5.0, 3.0, 4.5]
    assert str(table.ratings["timestamp"].dtype) == "int64"
    assert [(r.line, r.stage, r.reason) for r in table.rejections] == [
        (7, "parse", "movieId 9 is not in movies.csv"),
        (8, "parse", "rating is not a number: 'abc'"),
        (9, "read", "expected 4 fields separated by ',', got 2"),
    ]
    titles = dict(zip(table.movies["movie"], table.movies["title"], strict=True))
    assert titles["3"] == "Quiet Harbour, The (1995)"


def test_movielens_100k_reads_latin1_titles_and_genre_flags(ingest_fixtures: Path) -> None:
    table = read_ratings(ingest_fixtures / "ml-100k" / "u.data", progress=False)
    movies = table.movies.set_index("movie")
    assert movies.loc["2", "title"] == "Métropole, La (1995)"
    assert movies.loc["1", "genres"] == "Animation|Children's|Comedy"
    assert movies.loc["3", "genres"] == ""
    assert len(table.ratings) == 5
    assert [(r.line, r.reason) for r in table.rejections] == [(6, "rating is not a number: 'x'")]


def test_movielens_1m_reads_double_colon_lines(ingest_fixtures: Path) -> None:
    table = read_ratings(ingest_fixtures / "ml-1m", progress=False)
    assert table.movies.set_index("movie").loc["2", "title"] == "Métropole, La (1995)"
    assert len(table.ratings) == 5
    assert [(r.line, r.stage) for r in table.rejections] == [(6, "read")]


def test_a_ratings_file_without_its_catalogue_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"movies\.csv is missing"):
        read_ratings(tmp_path / "ratings.csv", progress=False)
