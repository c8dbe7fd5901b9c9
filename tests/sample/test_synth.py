"""The synthetic generators: reproducible, realistic where it matters, and honest about truth."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.sample.synth import (
    MALFORMED_KINDS,
    generate_playlists,
    generate_ratings,
    sample_path,
    write_demo_ratings,
    write_playlists,
    write_ratings,
)

HANGUL = re.compile("[\uac00-\ud7a3]")
SEPARATORS = (" - ", " – ", " — ", " | ", "－", "-")


@pytest.fixture(scope="module")
def playlists_with_truth():
    return generate_playlists(400, 300, seed=7, malformed_rate=0.03, with_truth=True)


def test_same_seed_same_playlists_and_other_seed_differs() -> None:
    first = generate_playlists(60, 80, seed=3)
    assert json.dumps(first) == json.dumps(generate_playlists(60, 80, seed=3))
    assert json.dumps(first) != json.dumps(generate_playlists(60, 80, seed=4))


def test_records_look_like_youtube_tracklists(playlists_with_truth) -> None:
    records, truth = playlists_with_truth
    assert len(records) == 400
    assert all(set(r) <= {"video_id", "title", "songs"} for r in records)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", r["video_id"]) for r in records)
    clean = [
        song
        for index, record in enumerate(records)
        if index not in truth.malformed
        for song in record["songs"]
    ]
    assert all(isinstance(s, str) and any(sep in s for sep in SEPARATORS) for s in clean)
    korean = sum(bool(HANGUL.search(s)) for s in clean)
    assert 0.2 < korean / len(clean) < 0.9  # both languages, neither alone
    assert any(re.match(r"\(?\[?\d{2}:\d{2}", s) for s in clean)  # timestamps
    assert any(re.match(r"#?\d+[.)] ?", s) for s in clean)  # track numbers
    assert any(re.search(r"\b(feat\.|ft\.|featuring)", s, re.IGNORECASE) for s in clean)


def test_truth_is_aligned_and_one_song_is_written_many_ways(playlists_with_truth) -> None:
    records, truth = playlists_with_truth
    for record, ids in zip(records, truth.song_ids, strict=True):
        assert len(ids) == len(record.get("songs") or [])
    written: dict[int, set[str]] = {}
    for record, ids in zip(records, truth.song_ids, strict=True):
        for song, song_id in zip(record.get("songs") or [], ids.tolist(), strict=True):
            if song_id >= 0:
                written.setdefault(song_id, set()).add(song)
    most_common = Counter(np.concatenate(truth.song_ids).tolist()).most_common(5)
    assert all(len(written[song_id]) >= 5 for song_id, _ in most_common if song_id >= 0)
    catalogue = truth.songs
    assert list(catalogue["song_id"]) == list(range(300))
    assert not catalogue.duplicated(["artist", "title"]).any()


def test_aliased_artists_appear_with_and_without_their_alias(playlists_with_truth) -> None:
    records, truth = playlists_with_truth
    aliased = truth.songs[truth.songs["artist_alias"] != ""]
    assert len(aliased)
    text = "\n".join(s for r in records for s in (r.get("songs") or []) if isinstance(s, str))
    artist, alias = aliased.iloc[0]["artist"], aliased.iloc[0]["artist_alias"]
    if artist.startswith("The "):
        assert alias == artist[4:]
    else:
        assert f"{artist} ({alias})" in text or f"{alias} ({artist})" in text


def test_malformed_records_are_exactly_the_documented_kinds(playlists_with_truth) -> None:
    records, truth = playlists_with_truth
    assert len(truth.malformed) == 12  # round(0.03 * 400)
    assert set(truth.malformed.values()) == set(MALFORMED_KINDS)
    for index, kind in truth.malformed.items():
        record = records[index]
        if kind == "missing_songs":
            assert "songs" not in record
        elif kind == "null_songs":
            assert record["songs"] is None
        else:
            bad = [s for s, i in zip(record["songs"], truth.song_ids[index], strict=True) if i < 0]
            assert len(bad) == 1
            check = {
                "empty_song": lambda s: s == "",
                "non_string_song": lambda s: isinstance(s, int),
                "long_song": lambda s: isinstance(s, str) and len(s) >= 1000,
                "no_separator": lambda s: not any(sep in s for sep in SEPARATORS),
            }[kind]
            assert check(bad[0]), (kind, bad[0])
    assert not generate_playlists(200, 100, seed=1, malformed_rate=0.0, with_truth=True)[
        1
    ].malformed


def test_popularity_is_long_tailed(playlists_with_truth) -> None:
    _, truth = playlists_with_truth
    counts = np.sort(np.bincount(np.concatenate(truth.song_ids).clip(0), minlength=300))[::-1]
    assert counts[:30].sum() > 0.3 * counts.sum()  # the top 10% of songs take over 30%


def test_order_carries_signal_a_markov_model_beats_popularity(playlists_with_truth) -> None:
    _, truth = playlists_with_truth
    sequences = [ids[ids >= 0] for ids in truth.song_ids if len(ids) > 1]
    train, test = sequences[: len(sequences) // 2], sequences[len(sequences) // 2 :]
    n_songs = len(truth.songs)
    transitions = np.zeros((n_songs, n_songs))
    for sequence in train:
        np.add.at(transitions, (sequence[:-1], sequence[1:]), 1.0)
    popularity = np.bincount(np.concatenate(train), minlength=n_songs)
    most_popular = set(np.argsort(-popularity, kind="stable")[:10].tolist())
    markov_hits = popular_hits = total = 0
    for sequence in test:
        for current, following in zip(sequence[:-1].tolist(), sequence[1:].tolist(), strict=True):
            scores = transitions[current] + 1e-6 * popularity
            markov_hits += following in set(np.argsort(-scores, kind="stable")[:10].tolist())
            popular_hits += following in most_popular
            total += 1
    assert markov_hits / total > 2 * popular_hits / total


def test_order_strength_zero_removes_the_sequence_signal() -> None:
    def share_on_path(order_strength: float) -> float:
        """How often the next song is one of the next four on the current song's mood path."""
        _, truth = generate_playlists(
            300, 200, seed=5, order_strength=order_strength, with_truth=True
        )
        ahead = np.zeros((200, 200), dtype=bool)
        for _, group in truth.songs.sort_values("mood").groupby("genre"):
            path = group["song_id"].to_numpy()
            for step in range(1, 5):
                ahead[path, np.roll(path, -step)] = True
        pairs = np.concatenate(
            [np.stack([s[:-1], s[1:]], axis=1) for s in truth.song_ids if len(s) > 1]
        )
        pairs = pairs[(pairs >= 0).all(axis=1)]
        return float(ahead[pairs[:, 0], pairs[:, 1]].mean())

    assert share_on_path(0.9) > 0.7
    assert share_on_path(0.0) < 0.15


def test_playlist_writers_round_trip(tmp_path: Path) -> None:
    records = generate_playlists(30, 50, seed=2, malformed_rate=0.1)
    as_json = write_playlists(records, tmp_path / "p.json")
    assert json.loads(as_json.read_text(encoding="utf-8")) == records
    as_lines = write_playlists(records, tmp_path / "p.jsonl")
    lines = as_lines.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records


@pytest.fixture(scope="module")
def ratings_with_truth():
    return generate_ratings(200, 400, seed=11, n_bots=3, with_truth=True)


def test_ratings_have_the_movielens_shape(ratings_with_truth, tmp_path: Path) -> None:
    ratings, movies, _ = ratings_with_truth
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert list(movies.columns) == ["movieId", "title", "genres"]
    assert set(np.unique(ratings["rating"])) <= {x / 2 for x in range(1, 11)}
    assert ratings["movieId"].isin(movies["movieId"]).all()
    assert movies["movieId"].is_unique and movies["movieId"].is_monotonic_increasing
    assert movies["title"].str.fullmatch(r".+ \(\d{4}\)").all()
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert ratings["userId"].nunique() == 200
    assert 3.2 < ratings["rating"].mean() < 3.9
    ratings_path, movies_path = write_ratings(ratings, movies, tmp_path / "ml")
    assert ratings_path.read_text().splitlines()[0] == "userId,movieId,rating,timestamp"
    pd.testing.assert_frame_equal(pd.read_csv(ratings_path), ratings)
    pd.testing.assert_frame_equal(pd.read_csv(movies_path), movies)


def test_ratings_are_reproducible() -> None:
    first = generate_ratings(40, 80, seed=1, n_bots=1)
    again = generate_ratings(40, 80, seed=1, n_bots=1)
    other = generate_ratings(40, 80, seed=2, n_bots=1)
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])
    assert not first[0].equals(other[0])


def test_each_user_rates_at_increasing_times_and_bots_burst(ratings_with_truth) -> None:
    ratings, _, truth = ratings_with_truth
    assert len(truth.bot_user_ids) == 3
    by_time = ratings.sort_values(["userId", "timestamp"], kind="stable")
    assert (by_time.groupby("userId")["timestamp"].diff().dropna() > 0).all()
    busiest: dict[int, int] = {}
    for user, group in by_time.groupby("userId"):
        times = group["timestamp"].to_numpy()
        busiest[int(user)] = int(
            (np.searchsorted(times, times + 60, side="left") - np.arange(len(times))).max()
        )
    bots = set(truth.bot_user_ids.tolist())
    assert all(busiest[user] > 20 for user in bots)
    assert all(count <= 20 for user, count in busiest.items() if user not in bots)


def test_collaborative_filtering_beats_popularity_on_held_out_ratings(ratings_with_truth) -> None:
    ratings, movies, truth = ratings_with_truth
    people = ratings[~ratings["userId"].isin(truth.bot_user_ids)]
    users = people["userId"].to_numpy() - 1
    items = np.searchsorted(movies["movieId"].to_numpy(), people["movieId"].to_numpy())
    liked = people["rating"].to_numpy() >= 3.5
    held_out = np.random.default_rng(0).random(len(people)) < 0.2
    matrix = np.zeros((200, len(movies)))
    matrix[users[liked & ~held_out], items[liked & ~held_out]] = 1.0
    _, _, components = np.linalg.svd(matrix, full_matrices=False)
    scores = matrix @ components[:12].T @ components[:12]
    popularity = matrix.sum(axis=0)
    svd_recall = popular_recall = 0.0
    for user in np.unique(users):
        targets = set(items[(users == user) & liked & held_out].tolist())
        if not targets:
            continue
        seen = matrix[user] > 0
        for ranking, hits in ((scores[user], "svd"), (popularity, "pop")):
            ranked = np.where(seen, -np.inf, ranking)
            found = len(targets & set(np.argsort(-ranked, kind="stable")[:10].tolist()))
            if hits == "svd":
                svd_recall += found / min(10, len(targets))
            else:
                popular_recall += found / min(10, len(targets))
    assert svd_recall > 1.2 * popular_recall


def test_bundled_sample_is_small_and_matches_the_generator(tmp_path: Path) -> None:
    playlists = sample_path("playlists.json")
    assert playlists.stat().st_size < 1_000_000
    write_playlists(generate_playlists(300, 400, 42, 0.02), tmp_path / "playlists.json")
    assert (tmp_path / "playlists.json").read_bytes() == playlists.read_bytes()
    with pytest.raises(FileNotFoundError, match="no bundled sample"):
        sample_path("nothing-here.json")


def test_demo_ratings_are_small_and_the_same_every_time(tmp_path: Path) -> None:
    first, second = write_demo_ratings(tmp_path / "a"), write_demo_ratings(tmp_path / "b")
    for name in ("ratings.csv", "movies.csv"):
        assert (first / name).stat().st_size < 1_000_000
        assert (first / name).read_bytes() == (second / name).read_bytes()
    ratings = pd.read_csv(first / "ratings.csv")
    assert ratings["userId"].nunique() == 300
