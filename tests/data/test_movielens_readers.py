"""MovieLens readers: typed ratings, located bad rows, and the three layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from segue.data.input_formats import InputError
from segue.data.movielens_readers import read_ratings


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
