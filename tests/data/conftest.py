"""Ingestion fixtures: the tracked playlist files, plus small rating files in every MovieLens
layout, written per session so the repository holds nothing shaped like the real dataset.

Titles are made up; the second title carries an accented letter so Latin-1 decoding is tested,
and each ratings file has one malformed row.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from segue.data.readers import ML100K_GENRES

TRACKED = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
ML100K_FLAGS = [
    "0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0",
    "0|0|0|0|0|0|0|0|1|0|0|0|1|0|0|0|0|1|0",
    "0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0",
]
TITLES = ["Paper Lanterns (1995)", "Métropole, La (1995)", "Cold Front (1995)"]

# path inside the fixture root -> (text, encoding)
MOVIELENS_LAYOUTS: dict[str, tuple[str, str]] = {
    "ml-100k/u.data": (
        "196\t1\t3\t881250949\n196\t2\t5\t881250950\n186\t1\t4\t891717742\n"
        "186\t2\t1\t891717743\n186\t3\t4\t891717744\n22\t3\tx\t878887116\n",
        "ascii",
    ),
    "ml-100k/u.item": (
        "".join(
            f"{movie}|{title}|01-Jan-1995||http://example.org/{movie}|{flags}\n"
            for movie, (title, flags) in enumerate(zip(TITLES, ML100K_FLAGS), 1)
        ),
        "latin-1",
    ),
    "ml-100k/u.genre": ("".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)) + "\n", "ascii"),
    "ml-1m/movies.dat": (
        f"1::{TITLES[0]}::Animation|Children's|Comedy\n"
        f"2::{TITLES[1]}::Drama|Musical|War\n"
        f"3::{TITLES[2]}::Action|Crime|Thriller\n",
        "latin-1",
    ),
    "ml-1m/ratings.dat": (
        "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n"
        "2::3::5::978300275\n2::2::2::978824291\n3::1\n",
        "ascii",
    ),
    "movielens-csv/movies.csv": (
        "movieId,title,genres\n"
        f"1,{TITLES[0]},Adventure|Animation|Children|Comedy|Fantasy\n"
        "2,Lost Orchard (1995),Adventure|Children|Fantasy\n"
        '3,"Quiet Harbour, The (1995)",Comedy|Drama|Romance\n'
        f"4,{TITLES[2]},Action|Crime|Thriller\n",
        "utf-8",
    ),
    "movielens-csv/ratings.csv": (
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,2.0,964981247\n"
        "1,3,5.0,964982224\n2,1,5.0,964983000\n2,4,3.0,964983100\n2,9,4.0,964983200\n"
        "3,1,abc,964983300\n3,2\n3,4,4.5,964983400\n",
        "ascii",
    ),
}


@pytest.fixture(scope="session")
def ingest_fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the tracked playlist fixtures and the generated MovieLens layouts."""
    root = tmp_path_factory.mktemp("ingest-fixtures")
    for source in TRACKED.iterdir():
        shutil.copy(source, root / source.name)
    for relative, (text, encoding) in MOVIELENS_LAYOUTS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode(encoding))
    return root
