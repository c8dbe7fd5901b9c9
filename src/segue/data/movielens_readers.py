"""MovieLens readers: ratings and movies in the latest-small CSV, ml-100k and ml-1m layouts.

They work on whole columns, because a million rating rows one Python object at a time is too slow;
they return the valid rows with their line numbers and a rejection for every bad row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segue.data.input_formats import (
    MOVIELENS_LAYOUTS,
    InputError,
    InputFormat,
    detect_format,
    has_lone_surrogate,
    progress_bar,
)
from segue.data.rejects import STAGE_PARSE, STAGE_READ, Rejection, shorten

# The genre columns of ml-100k u.item, in file order.
ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]
_CSV_RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")


@dataclass
class RatingsTable:
    """Valid rating rows of one MovieLens ratings file and the catalogue they refer to.

    ``ratings`` columns: user (str), movie (str), rating (float64), timestamp (int64),
    line (int64, 1-based in ``source``). ``movies`` columns: movie, title, genres (str).
    ``lines`` holds the raw text of every line, indexed by line number - 1, for the report.
    ``n_records`` counts rating rows: non-blank lines after the header.
    """

    input_format: InputFormat
    source: str
    movies_source: str
    ratings: pd.DataFrame
    movies: pd.DataFrame
    lines: list[str]
    n_records: int
    rejections: list[Rejection] = field(default_factory=list)


def _reject_line(source: str, number: int, text: str, stage: str, reason: str) -> Rejection:
    """A rating row rejection; ``number`` is the 0-based index of the line in the file."""
    return Rejection(
        unit="rating",
        source=source,
        stage=stage,
        reason=reason,
        record=shorten(text),
        line=number + 1,
    )


def _column_order(header: str, source: str) -> list[int]:
    names = [name.strip().strip('"') for name in header.split(",")]
    missing = [name for name in _CSV_RATING_COLUMNS if name not in names]
    if missing:
        raise InputError(
            f"{source}: line 1: the header lacks {', '.join(missing)} (got {header!r})"
        )
    return [names.index(name) for name in _CSV_RATING_COLUMNS]


def _text_column(values: tuple[str, ...]) -> np.ndarray:
    return np.array([value.strip().strip('"') for value in values], dtype=object)


def _rating_rows(
    raw_lines: list[str],
    first: int,
    separator: str,
    order: list[int],
    source: str,
    known_movies: set[str],
    movies_name: str,
) -> tuple[pd.DataFrame, list[Rejection], int]:
    """Typed rating rows of every non-blank line from ``first`` on, the rejections of the others,
    and how many rating rows (non-blank lines) there were."""
    rejections: list[Rejection] = []
    numbers = [number for number in range(first, len(raw_lines)) if raw_lines[number].strip()]
    n_records = len(numbers)
    if has_lone_surrogate("".join(raw_lines[first:])):
        readable = []
        for number in numbers:
            if has_lone_surrogate(raw_lines[number]):
                text = raw_lines[number]
                rejections.append(_reject_line(source, number, text, STAGE_READ, "not valid UTF-8"))
            else:
                readable.append(number)
        numbers = readable
    parts = [raw_lines[number].split(separator) for number in numbers]
    widths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    for position in np.flatnonzero(widths != 4).tolist():
        number = numbers[position]
        reason = f"expected 4 fields separated by {separator!r}, got {widths[position]}"
        rejections.append(_reject_line(source, number, raw_lines[number], STAGE_READ, reason))
    whole = np.flatnonzero(widths == 4)
    line_index = np.asarray(numbers, dtype=np.int64)[whole]
    columns = list(zip(*(parts[k] for k in whole.tolist()), strict=True)) or [()] * 4
    user, movie, rating_text, stamp_text = (_text_column(columns[k]) for k in order)
    rating = pd.to_numeric(rating_text, errors="coerce").astype(np.float64)
    stamp = pd.to_numeric(stamp_text, errors="coerce").astype(np.float64)
    known = pd.Series(movie, dtype=object).isin(known_movies).to_numpy()
    bad = (
        (user == "")
        | (movie == "")
        | ~np.isfinite(rating)
        | ~np.isfinite(stamp)
        | (stamp != np.floor(stamp))
        | ~known
    )
    for position in np.flatnonzero(bad).tolist():
        if not user[position]:
            reason = "userId is empty"
        elif not movie[position]:
            reason = "movieId is empty"
        elif not np.isfinite(rating[position]):
            reason = f"rating is not a number: {rating_text[position]!r}"
        elif not np.isfinite(stamp[position]) or stamp[position] != np.floor(stamp[position]):
            reason = f"timestamp is not a whole number: {stamp_text[position]!r}"
        else:
            reason = f"movieId {movie[position]} is not in {movies_name}"
        number = int(line_index[position])
        rejections.append(_reject_line(source, number, raw_lines[number], STAGE_PARSE, reason))
    keep = ~bad
    frame = pd.DataFrame(
        {
            "user": pd.Series(user[keep], dtype=object),
            "movie": pd.Series(movie[keep], dtype=object),
            "rating": rating[keep],
            "timestamp": stamp[keep].astype(np.int64),
            "line": line_index[keep] + 1,
        }
    )
    rejections.sort(key=lambda rejection: rejection.line or 0)
    return frame, rejections, n_records


def _movie_rejection(source: str, line: int, reason: str, text: str, stage: str) -> Rejection:
    return Rejection(
        unit="movie", source=source, stage=stage, reason=reason, record=shorten(text), line=line
    )


def _movie_rows(
    path: Path, input_format: InputFormat, encoding: str
) -> Iterator[tuple[int, list[str] | None, str]]:
    """(line number, [movie id, title, genres] or None when the line is malformed, raw text)."""
    text = path.read_bytes().decode(encoding, errors="surrogateescape")
    if input_format == InputFormat.MOVIELENS_CSV:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["movieId", "title", "genres"]:
            raise InputError(f"{path}: line 1: expected the header movieId,title,genres")
        for row in reader:
            if row:
                yield reader.line_num, row if len(row) == 3 else None, ",".join(row)
        return
    genre_names = ML100K_GENRES
    genre_file = path.with_name("u.genre")
    if input_format == InputFormat.MOVIELENS_100K and genre_file.exists():
        pairs = [r.split("|") for r in genre_file.read_text(encoding).splitlines() if "|" in r]
        genre_names = [name for name, _ in sorted(pairs, key=lambda pair: int(pair[1]))]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if input_format == InputFormat.MOVIELENS_1M:
            parts = line.split("::")
            row = [parts[0], "::".join(parts[1:-1]), parts[-1]] if len(parts) >= 3 else None
        else:
            parts = line.split("|")
            flags = parts[5 : 5 + len(genre_names)]
            valid = len(parts) == 5 + len(genre_names) and all(f in ("0", "1") for f in flags)
            genres = "|".join(
                name for name, flag in zip(genre_names, flags, strict=False) if flag == "1"
            )
            row = [parts[0], parts[1], genres] if valid else None
        yield number, row, line


def read_movies(
    path: Path, input_format: InputFormat, encoding: str
) -> tuple[pd.DataFrame, list[Rejection]]:
    """The movie catalogue (movie, title, genres); malformed or repeated ids are rejected."""
    source = str(path)
    rows: dict[str, tuple[str, str]] = {}
    rejections: list[Rejection] = []
    for number, row, text in _movie_rows(path, input_format, encoding):
        if row is None:
            rejections.append(
                _movie_rejection(source, number, "malformed movie line", text, STAGE_READ)
            )
            continue
        movie, title, genres = (part.strip() for part in row)
        if not movie or has_lone_surrogate(title + genres + movie):
            reason = "empty movieId" if not movie else "not valid text in the file's encoding"
            rejections.append(_movie_rejection(source, number, reason, text, STAGE_PARSE))
        elif movie in rows:
            rejections.append(
                _movie_rejection(source, number, f"movieId {movie} repeats", text, STAGE_PARSE)
            )
        else:
            rows[movie] = (title, genres)
    movies = pd.DataFrame(
        {
            "movie": list(rows),
            "title": [title for title, _ in rows.values()],
            "genres": [genres for _, genres in rows.values()],
        },
        dtype=object,
    )
    return movies, rejections


def read_ratings(path: str | Path, *, progress: bool = True) -> RatingsTable:
    """Ratings and movies of a MovieLens directory or ratings file, in any of the three layouts."""
    target = Path(path)
    input_format = detect_format(target)
    if input_format not in MOVIELENS_LAYOUTS:
        raise InputError(
            f"{target}: looks like {input_format} playlists; use `segue ingest playlists`"
        )
    ratings_name, movies_name, encoding, separator = MOVIELENS_LAYOUTS[input_format]
    directory = target if target.is_dir() else target.parent
    ratings_path, movies_path = directory / ratings_name, directory / movies_name
    if not movies_path.exists():
        raise InputError(f"{ratings_path}: the movie catalogue {movies_path} is missing")
    source = str(ratings_path)
    with progress_bar(2, f"reading {ratings_name}", "files", progress) as bar:
        movies, rejections = read_movies(movies_path, input_format, encoding)
        bar.update(1)
        text = ratings_path.read_bytes().decode(encoding, errors="surrogateescape")
        raw_lines = text.splitlines()
        del text
        first, order = 0, [0, 1, 2, 3]
        if input_format == InputFormat.MOVIELENS_CSV:
            if not raw_lines:
                raise InputError(f"{source}: the file is empty; expected a header line")
            first, order = 1, _column_order(raw_lines[0], source)
        frame, row_rejections, n_records = _rating_rows(
            raw_lines, first, separator, order, source, set(movies["movie"]), movies_name
        )
        bar.update(1)
    rejections += row_rejections
    return RatingsTable(
        input_format, source, str(movies_path), frame, movies, raw_lines, n_records, rejections
    )
