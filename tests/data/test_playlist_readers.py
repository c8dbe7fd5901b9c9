"""Playlist readers: record locations, recovery from cut and broken files, Spotify slices."""

from __future__ import annotations

from pathlib import Path

import pytest

from segue.data.input_formats import InputError, InputFormat, detect_format
from segue.data.playlist_readers import (
    InvalidSong,
    PlaylistRecord,
    find_playlist_files,
    read_playlist_file,
)
from segue.data.rejects import Rejection


def read_all(path: Path) -> list[PlaylistRecord | Rejection]:
    return list(read_playlist_file(path, detect_format(path), progress=False))


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
