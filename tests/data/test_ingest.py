"""Ingestion end to end: exact counts, input = kept + rejected, and bad input never crashes.

Counting unit for playlists: playlist records and song entries (songs counted inside valid
playlists). For ratings: rating rows.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from segue.data.dataset import Dataset
from segue.data.ingest import ingest_playlists, ingest_ratings
from segue.data.rejects import StrictModeError, read_rejections
from segue.sample.synth import generate_playlists, write_playlists
from segue.settings import DataSettings


def units(out: Path) -> Counter:
    return Counter(line["unit"] for line in read_rejections(out / "rejected.jsonl"))


def assert_nothing_lost(dataset: Dataset, units_in: tuple[str, ...]) -> None:
    counts = dataset.manifest["counts"]
    rejected = units(dataset.directory)
    for unit in units_in:
        singular = unit.removesuffix("s")
        assert counts["input"][unit] == counts["kept"][unit] + rejected[singular], unit
        assert counts["rejected"][unit] == rejected[singular]


def by_location(out: Path) -> dict[tuple, dict]:
    return {
        (line.get("line"), line.get("index"), line.get("song")): line
        for line in read_rejections(out / "rejected.jsonl")
    }


def test_design_json_playlists_become_a_dataset(tmp_path: Path, ingest_fixtures: Path) -> None:
    """vid-a repeats "IU - Palette" (duplicates drops the repeat); vid-c has one song (too short);
    "아이유 - Palette" in vid-b is the same song as "IU - Palette" once the alias is learned from
    "아이유 (IU) - 밤편지" in vid-a."""
    out = tmp_path / "out"
    result = ingest_playlists(
        [ingest_fixtures / "playlists.json"], out, DataSettings(), progress=False
    )
    dataset = Dataset.load(out)
    counts = dataset.manifest["counts"]
    assert counts["input"] == {"playlists": 3, "songs": 8}
    assert counts["kept"] == {"playlists": 2, "songs": 6, "items": 4}
    assert counts["rejected"] == {"playlists": 1, "songs": 2}
    assert result.n_rejected == 3
    assert_nothing_lost(dataset, ("playlists", "songs"))
    assert dataset.items["count"].tolist() == [2, 2, 1, 1]
    palette = dataset.items.set_index("key").loc["iu|palette"]
    assert (palette["artist"], palette["title"], palette["count"]) == ("IU", "Palette", 2)
    sequences = dataset.sequences()
    assert sequences.sequence_ids == ["vid-a", "vid-b"]
    assert [len(s) for s in sequences.sequences] == [3, 3]
    assert dataset.interactions["position"].tolist() == [0, 1, 2, 0, 1, 2]
    assert dataset.aliases is not None
    assert ("아이유", "iu") in set(zip(dataset.aliases["alias"], dataset.aliases["artist"]))
    rejected = read_rejections(out / "rejected.jsonl")
    assert [(r["unit"], r["stage"], r["sequence"]) for r in rejected] == [
        ("song", "duplicates", "vid-a"),
        ("song", "min_sequence_length", "vid-c"),
        ("playlist", "min_sequence_length", "vid-c"),
    ]
    assert rejected[0]["song"] == 3 and rejected[0]["index"] == 0
    assert rejected[0]["record"] == "IU - Palette"


def test_the_manifest_records_sources_settings_and_every_stage(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    out = tmp_path / "out"
    settings = DataSettings(min_item_count=2)
    ingest_playlists([ingest_fixtures / "playlists.json"], out, settings, progress=False)
    manifest = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "playlists"
    assert len(manifest["fingerprint"]) == 16
    (source,) = manifest["sources"]
    assert source["format"] == "playlist-json" and source["records"] == 3
    assert len(source["sha256"]) == 64
    assert manifest["settings"]["min_item_count"] == 2
    stages = [stage["stage"] for stage in manifest["stages"]]
    assert stages == [
        "read",
        "parse",
        "banned_users",
        "bot_users",
        "implicit_threshold",
        "duplicates",
        "max_sequence_length",
        "min_item_count",
        "min_sequence_length",
    ]
    for earlier, later in zip(manifest["stages"][2:], manifest["stages"][3:], strict=False):
        assert earlier["after"] == later["before"]


def test_ingestion_is_deterministic(tmp_path: Path, ingest_fixtures: Path) -> None:
    first = ingest_playlists(
        [ingest_fixtures / "playlists.json"], tmp_path / "a", DataSettings(), progress=False
    )
    second = ingest_playlists(
        [ingest_fixtures / "playlists.json"], tmp_path / "b", DataSettings(), progress=False
    )
    assert first.dataset.fingerprint == second.dataset.fingerprint


def test_bad_json_lines_records_are_rejected_one_by_one(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    """9 records: line 3 unreadable; lines 4, 5, 7, 8 malformed; line 9 repeats p1's id.
    p5 has 4 bad songs (null, 42, "", blanks) of 6; p6 has a lone surrogate in one of 3."""
    out = tmp_path / "out"
    ingest_playlists([ingest_fixtures / "playlists.jsonl"], out, DataSettings(), progress=False)
    dataset = Dataset.load(out)
    counts = dataset.manifest["counts"]
    assert counts["input"] == {"playlists": 9, "songs": 12}
    assert counts["kept"]["playlists"] == 3 and counts["kept"]["songs"] == 7
    assert_nothing_lost(dataset, ("playlists", "songs"))
    found = by_location(out)
    assert found[(3, None, None)]["stage"] == "read"
    assert found[(4, None, None)]["reason"] == "the record has no 'songs' field"
    assert found[(5, None, None)]["reason"] == "songs must be an array of strings, got string"
    assert found[(7, None, None)]["reason"] == "a playlist must be a JSON object, got array"
    assert found[(8, None, None)]["reason"] == "video_id is missing or null"
    assert found[(9, None, None)]["reason"].startswith("playlist id 'p1' repeats (first at ")
    assert found[(6, None, 0)]["reason"] == "a song must be a string, got null"
    assert found[(6, None, 1)]["reason"] == "a song must be a string, got number"
    assert found[(6, None, 2)]["reason"] == "empty song string"
    assert found[(6, None, 3)]["reason"] == "empty song string"
    surrogate = found[(10, None, 0)]
    assert surrogate["reason"] == "song string is not valid Unicode (lone surrogate)"
    assert surrogate["record"] == "\ud800 - Broken"
    (out / "rejected.jsonl").read_bytes().decode("utf-8")  # the report itself is valid UTF-8


def test_a_cut_json_array_keeps_what_came_before_the_cut(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    out = tmp_path / "out"
    ingest_playlists([ingest_fixtures / "truncated.json"], out, DataSettings(), progress=False)
    dataset = Dataset.load(out)
    assert dataset.manifest["counts"]["input"] == {"playlists": 4, "songs": 6}
    assert dataset.manifest["counts"]["kept"]["playlists"] == 3
    (cut,) = read_rejections(out / "rejected.jsonl")
    assert (cut["unit"], cut["stage"], cut["index"], cut["line"]) == ("playlist", "read", 3, 5)


def test_a_ten_thousand_character_song_is_rejected_and_reported_short(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    monster = "A - " + "x" * 9_996
    records = [{"video_id": "v", "songs": [monster, "IU - Palette", "AKMU - 200%"]}]
    path.write_text(json.dumps(records), encoding="utf-8")
    out = tmp_path / "out"
    ingest_playlists([path], out, DataSettings(), progress=False)
    (line,) = read_rejections(out / "rejected.jsonl")
    assert line["reason"] == (
        "song string is 10,000 characters, longer than data.max_song_length = 300"
    )
    assert line["song"] == 0 and line["index"] == 0
    assert len(line["record"]) < 250 and line["record"].endswith("[10000 characters]")
    assert Dataset.load(out).manifest["counts"]["kept"] == {"playlists": 1, "songs": 2, "items": 2}


def test_a_song_longer_than_a_small_configured_max_song_length_is_rejected(
    tmp_path: Path,
) -> None:
    path = tmp_path / "short.json"
    wordy = "IU - " + "밤편지 " * 7  # 33 characters
    records = [{"video_id": "v", "songs": ["IU - 밤편지", wordy, "AKMU - 200%"]}]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    ingest_playlists([path], out, DataSettings(max_song_length=20), progress=False)
    (line,) = read_rejections(out / "rejected.jsonl")
    assert (line["unit"], line["stage"], line["song"]) == ("song", "parse", 1)
    assert line["reason"] == (
        f"song string is {len(wordy)} characters, longer than data.max_song_length = 20"
    )
    assert Dataset.load(out).manifest["counts"]["kept"] == {"playlists": 1, "songs": 2, "items": 2}


def test_a_song_longer_than_the_parsers_default_is_kept_under_a_larger_max_song_length(
    tmp_path: Path,
) -> None:
    path = tmp_path / "long.json"
    long_title = "IU - " + "Palette " * 50  # 405 characters, over the parser's default of 300
    records = [{"video_id": "v", "songs": [long_title, "AKMU - 200%"]}]
    path.write_text(json.dumps(records), encoding="utf-8")
    out = tmp_path / "out"
    ingest_playlists([path], out, DataSettings(max_song_length=500), progress=False)
    assert read_rejections(out / "rejected.jsonl") == []
    assert Dataset.load(out).manifest["counts"]["kept"] == {"playlists": 1, "songs": 2, "items": 2}


def test_nulls_and_wrong_types_in_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "odd.json"
    records = [
        None,
        {"video_id": "a", "songs": None},
        {"video_id": 7, "songs": ["IU - Palette", ["nested"], {"x": 1}, True, "AKMU - 200%"]},
        {"video_id": "", "songs": ["IU - Palette"]},
        {"video_id": {"id": 1}, "songs": []},
        {"video_id": "empty", "songs": []},
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    out = tmp_path / "out"
    ingest_playlists([path], out, DataSettings(), progress=False)
    dataset = Dataset.load(out)
    assert dataset.manifest["counts"]["input"] == {"playlists": 6, "songs": 5}
    assert dataset.manifest["counts"]["kept"] == {"playlists": 1, "songs": 2, "items": 2}
    assert_nothing_lost(dataset, ("playlists", "songs"))
    reasons = {
        (r.get("index"), r.get("song")): r["reason"]
        for r in read_rejections(out / "rejected.jsonl")
    }
    assert reasons[(0, None)] == "a playlist must be a JSON object, got null"
    assert reasons[(1, None)] == "songs must be an array of strings, got null"
    assert reasons[(2, 1)] == "a song must be a string, got array"
    assert reasons[(2, 3)] == "a song must be a string, got boolean"
    assert reasons[(3, None)] == "video_id is empty"
    assert reasons[(4, None)] == "video_id must be a string, got object"
    assert reasons[(5, None)].startswith("0 songs left after the other rules")
    assert dataset.sequences().sequence_ids == ["7"]


def test_spotify_slices_are_ingested_with_bad_tracks_rejected(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    out = tmp_path / "out"
    ingest_playlists([ingest_fixtures / "mpd.slice.0-2.json"], out, DataSettings(), progress=False)
    dataset = Dataset.load(out)
    counts = dataset.manifest["counts"]
    assert counts["input"] == {"playlists": 3, "songs": 6}
    assert counts["kept"] == {"playlists": 2, "songs": 5, "items": 3}
    assert_nothing_lost(dataset, ("playlists", "songs"))
    keys = set(dataset.items["key"])
    assert {"britneyspears|toxic", "beyonce|crazyinlove"} <= keys


def test_several_files_share_one_alias_table_and_one_id_space(tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.json"
    first.write_text(
        json.dumps({"video_id": "x", "songs": ["아이유 (IU) - 밤편지", "AKMU - 200%"]}) + "\n",
        encoding="utf-8",
    )
    second.write_text(
        json.dumps([{"video_id": "y", "songs": ["IU - 밤편지", "아이유 - 밤편지", "AKMU - 200%"]}]),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    ingest_playlists([first, second], out, DataSettings(drop_duplicates=False), progress=False)
    dataset = Dataset.load(out)
    assert dataset.items.set_index("key").loc["iu|밤편지", "count"] == 3
    assert [s["format"] for s in dataset.manifest["sources"]] == ["playlist-jsonl", "playlist-json"]


def test_banned_playlists_are_reported_as_playlists_and_songs(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    banned = tmp_path / "banned.txt"
    banned.write_text("vid-b\n", encoding="utf-8")
    out = tmp_path / "out"
    settings = DataSettings(banned_users_file=banned)
    ingest_playlists([ingest_fixtures / "playlists.json"], out, settings, progress=False)
    stages = Counter((r["unit"], r["stage"]) for r in read_rejections(out / "rejected.jsonl"))
    assert stages[("playlist", "banned_users")] == 1
    assert stages[("song", "banned_users")] == 3
    assert_nothing_lost(Dataset.load(out), ("playlists", "songs"))


def test_strict_mode_raises_at_the_first_bad_record(tmp_path: Path, ingest_fixtures: Path) -> None:
    with pytest.raises(
        StrictModeError,
        match=r"playlists.jsonl, line 3: invalid JSON \(Expecting value at column 46\)$",
    ):
        ingest_playlists(
            [ingest_fixtures / "playlists.jsonl"],
            tmp_path / "out",
            DataSettings(),
            strict=True,
            progress=False,
        )
    assert not (tmp_path / "out").exists()


def test_synthetic_corpus_with_malformed_records_loses_nothing(tmp_path: Path) -> None:
    records = generate_playlists(120, 200, seed=3, malformed_rate=0.1)
    path = write_playlists(records, tmp_path / "synth.jsonl")
    out = tmp_path / "out"
    ingest_playlists([path], out, DataSettings(min_item_count=2), progress=False)
    dataset = Dataset.load(out)
    assert dataset.manifest["counts"]["input"]["playlists"] == 120
    assert_nothing_lost(dataset, ("playlists", "songs"))
    reasons = Counter(r["reason"] for r in read_rejections(out / "rejected.jsonl"))
    assert reasons["the record has no 'songs' field"] == 2
    assert reasons["songs must be an array of strings, got null"] == 2


def test_movielens_csv_ratings_exact_counts(tmp_path: Path, ingest_fixtures: Path) -> None:
    """9 rating rows: line 9 unreadable, lines 7 and 8 invalid, user 1's 2.0 below threshold,
    user 3 left with one rating (too short)."""
    out = tmp_path / "out"
    ingest_ratings(ingest_fixtures / "movielens-csv", out, DataSettings(), progress=False)
    dataset = Dataset.load(out)
    counts = dataset.manifest["counts"]
    assert counts["input"] == {"ratings": 9}
    assert counts["kept"] == {"ratings": 4, "users": 2, "items": 3}
    assert counts["rejected"] == {"ratings": 5, "movies": 0}
    assert_nothing_lost(dataset, ("ratings",))
    rejected = {
        r["line"]: (r["stage"], r.get("sequence")) for r in read_rejections(out / "rejected.jsonl")
    }
    assert rejected == {
        3: ("implicit_threshold", "1"),
        7: ("parse", None),
        8: ("parse", None),
        9: ("read", None),
        10: ("min_sequence_length", "3"),
    }
    items = dataset.items.set_index("key")
    assert items.loc["1", "title"] == "Paper Lanterns (1995)" and items.loc["1", "count"] == 2
    assert items.loc["1", "artist"] == ""
    assert items.loc["4", "genres"] == "Action|Crime|Thriller"
    assert dataset.aliases is None
    frame = dataset.interactions
    user_one = frame[frame["sequence"] == "1"]
    # positions follow time: movie 3 (964982224) came before movie 1 (964982703)
    assert dataset.items["key"].to_numpy()[user_one["item"].to_numpy()].tolist() == ["3", "1"]
    assert user_one["timestamp"].tolist() == [964982224, 964982703]


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m"])
def test_older_movielens_layouts(tmp_path: Path, name: str, ingest_fixtures: Path) -> None:
    out = tmp_path / "out"
    ingest_ratings(ingest_fixtures / name, out, DataSettings(), progress=False)
    dataset = Dataset.load(out)
    assert dataset.manifest["counts"]["input"] == {"ratings": 6}
    assert dataset.manifest["counts"]["kept"]["ratings"] == 4
    assert_nothing_lost(dataset, ("ratings",))
    assert "Métropole, La (1995)" in set(dataset.items["title"])


def test_banned_users_and_bots_in_ratings(tmp_path: Path) -> None:
    source = tmp_path / "ml"
    source.mkdir()
    (source / "movies.csv").write_text(
        "movieId,title,genres\n" + "".join(f"{m},Movie {m} (2000),Drama\n" for m in range(1, 31)),
        encoding="utf-8",
    )
    rows = [f"1,{m},4.0,{1000 + m}" for m in range(1, 31)]  # 30 ratings in 30 s: a bot
    rows += [f"2,{m},4.0,{1000 + 3600 * m}" for m in range(1, 6)]
    rows += [f"3,{m},4.0,{1000 + 3600 * m}" for m in range(1, 6)]
    (source / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    banned = tmp_path / "banned.txt"
    banned.write_text("3\n", encoding="utf-8")
    settings = DataSettings(
        bot_max_interactions=20, bot_window_seconds=60, banned_users_file=banned
    )
    out = tmp_path / "out"
    ingest_ratings(source, out, settings, progress=False)
    dataset = Dataset.load(out)
    assert dataset.sequences().sequence_ids == ["2"]
    stages = Counter(r["stage"] for r in read_rejections(out / "rejected.jsonl"))
    assert stages == {"bot_users": 30, "banned_users": 5}


@pytest.mark.movielens
def test_movielens_small_loses_nothing(tmp_path: Path, movielens_small: Path) -> None:
    out = tmp_path / "out"
    ingest_ratings(movielens_small, out, DataSettings(), progress=False)
    dataset = Dataset.load(out)
    counts = dataset.manifest["counts"]
    assert counts["input"]["ratings"] == 100_836
    assert_nothing_lost(dataset, ("ratings",))
    assert counts["kept"]["users"] == dataset.interactions["sequence"].nunique()
    assert (dataset.interactions["rating"] >= 3.0).all()
