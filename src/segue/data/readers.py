"""Raw-file readers: playlists (JSON, JSON Lines, Spotify MPD slices) and MovieLens ratings.

Readers decode and check structure only; song strings are parsed later, once per distinct string.
Playlist readers yield a ``PlaylistRecord`` or a ``Rejection`` per record, each with its location
(file plus line for JSON Lines, array index for JSON). Ratings readers work on whole columns,
because a million rating rows one Python object at a time is too slow; they return the valid rows
with their line numbers and a rejection for every bad row.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from tqdm import tqdm

from segue.data.rejects import STAGE_PARSE, STAGE_READ, Rejection, shorten


class InputFormat(StrEnum):
    PLAYLIST_JSON = "playlist-json"
    PLAYLIST_JSONL = "playlist-jsonl"
    SPOTIFY_MPD = "spotify-mpd"
    MOVIELENS_CSV = "movielens-csv"
    MOVIELENS_100K = "movielens-100k"
    MOVIELENS_1M = "movielens-1m"


PLAYLIST_FORMATS = (InputFormat.PLAYLIST_JSON, InputFormat.PLAYLIST_JSONL, InputFormat.SPOTIFY_MPD)

# ratings file, movies file, encoding, separator: the three MovieLens layouts Segue reads.
_MOVIELENS_LAYOUTS = {
    InputFormat.MOVIELENS_CSV: ("ratings.csv", "movies.csv", "utf-8", ","),
    InputFormat.MOVIELENS_100K: ("u.data", "u.item", "latin-1", "\t"),
    InputFormat.MOVIELENS_1M: ("ratings.dat", "movies.dat", "latin-1", "::"),
}
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
_PROGRESS_EVERY = 10_000


class InputError(ValueError):
    """A path cannot be read at all: missing, of an unknown format, or lacking a companion file."""


class InvalidSong(NamedTuple):
    """A song entry a reader already knows is unusable (e.g. an MPD track without an artist)."""

    reason: str
    value: Any


@dataclass(frozen=True, slots=True)
class PlaylistRecord:
    """One structurally valid playlist; its song entries are still raw (any JSON value)."""

    source: str
    playlist_id: str
    songs: list[Any]
    line: int | None = None
    index: int | None = None


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def has_lone_surrogate(text: str) -> bool:
    """True when ``text`` cannot be written as UTF-8 (a lone surrogate such as JSON's "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bar(total: int | None, description: str, unit: str, progress: bool) -> tqdm:
    # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, tests).
    return tqdm(total=total, desc=description, unit=unit, disable=None if progress else True)


# -- format detection ------------------------------------------------------------------------


def _first_character(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4096).decode("utf-8-sig", errors="replace").lstrip()
    return head[:1]


def detect_format(path: str | Path) -> InputFormat:
    """The format of a file, or of a MovieLens directory, from its name and first character."""
    target = Path(path)
    if not target.exists():
        raise InputError(f"{target}: no such file or directory")
    if target.is_dir():
        for input_format, (ratings, movies, _, _) in _MOVIELENS_LAYOUTS.items():
            if (target / ratings).exists() and (target / movies).exists():
                return input_format
        raise InputError(
            f"{target}: a directory of ratings needs ratings.csv + movies.csv, u.data + u.item "
            "or ratings.dat + movies.dat; for playlists pass the directory to `ingest playlists`"
        )
    for input_format, (ratings, _, _, _) in _MOVIELENS_LAYOUTS.items():
        if target.name == ratings:
            return input_format
    if target.suffix in (".jsonl", ".ndjson"):
        return InputFormat.PLAYLIST_JSONL
    if target.suffix == ".json":
        if target.name.startswith("mpd.slice") or _first_character(target) == "{":
            return InputFormat.SPOTIFY_MPD
        return InputFormat.PLAYLIST_JSON
    raise InputError(
        f"{target}: unknown format; expected .json or .jsonl playlists, a Spotify MPD slice, "
        "or MovieLens ratings.csv / u.data / ratings.dat"
    )


def find_playlist_files(path: str | Path) -> list[tuple[Path, InputFormat]]:
    """Playlist files at ``path``: the file itself, or every .json/.jsonl file in a directory."""
    target = Path(path)
    if not target.exists():
        raise InputError(f"{target}: no such file or directory")
    candidates = (
        sorted(p for p in target.iterdir() if p.suffix in (".json", ".jsonl", ".ndjson"))
        if target.is_dir()
        else [target]
    )
    if not candidates:
        raise InputError(f"{target}: no .json or .jsonl playlist files in this directory")
    found = [(candidate, detect_format(candidate)) for candidate in candidates]
    for candidate, input_format in found:
        if input_format not in PLAYLIST_FORMATS:
            raise InputError(
                f"{candidate}: looks like {input_format} ratings; use `segue ingest ratings`"
            )
    return found


# -- playlists -------------------------------------------------------------------------------


def _reject_playlist(
    source: str, reason: str, value: Any, line: int | None, index: int | None, stage: str
) -> Rejection:
    return Rejection(
        unit="playlist",
        source=source,
        stage=stage,
        reason=reason,
        record=shorten(value),
        line=line,
        index=index,
    )


def _playlist_id(value: Any, field_name: str) -> tuple[str | None, str | None]:
    """The id as text, or the reason it is unusable."""
    if value is None:
        return None, f"{field_name} is missing or null"
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, f"{field_name} must be a string, got {json_type(value)}"
    text = str(value).strip()
    if not text:
        return None, f"{field_name} is empty"
    if has_lone_surrogate(text):
        return None, f"{field_name} is not valid Unicode (lone surrogate)"
    return text, None


def _design_playlist(
    value: Any, source: str, line: int | None, index: int | None
) -> PlaylistRecord | Rejection:
    """A record of the original design: {"video_id", "title", "songs": ["Artist - Title", ...]}."""
    if not isinstance(value, dict):
        reason = f"a playlist must be a JSON object, got {json_type(value)}"
        return _reject_playlist(source, reason, value, line, index, STAGE_PARSE)
    playlist_id, problem = _playlist_id(value.get("video_id"), "video_id")
    if problem is None and "songs" not in value:
        problem = "the record has no 'songs' field"
    songs = value.get("songs")
    if problem is None and not isinstance(songs, list):
        problem = f"songs must be an array of strings, got {json_type(songs)}"
    if problem is not None:
        return _reject_playlist(source, problem, value, line, index, STAGE_PARSE)
    return PlaylistRecord(source, str(playlist_id), songs, line, index)


def _mpd_track(track: Any) -> str | InvalidSong:
    if not isinstance(track, dict):
        return InvalidSong(f"a track must be a JSON object, got {json_type(track)}", track)
    artist, title = track.get("artist_name"), track.get("track_name")
    for name, text in (("artist_name", artist), ("track_name", title)):
        if not isinstance(text, str) or not text.strip():
            return InvalidSong(f"track {name} must be a non-empty string", track)
    return f"{artist} - {title}"


def _mpd_playlist(
    value: Any, source: str, line: int | None, index: int | None
) -> PlaylistRecord | Rejection:
    """A Spotify MPD playlist; each track becomes the string "artist_name - track_name"."""
    if not isinstance(value, dict):
        reason = f"a playlist must be a JSON object, got {json_type(value)}"
        return _reject_playlist(source, reason, value, line, index, STAGE_PARSE)
    playlist_id, problem = _playlist_id(value.get("pid"), "pid")
    tracks = value.get("tracks")
    if problem is None and not isinstance(tracks, list):
        problem = f"tracks must be an array, got {json_type(tracks)}"
    if problem is not None:
        return _reject_playlist(source, problem, value, line, index, STAGE_PARSE)
    return PlaylistRecord(source, str(playlist_id), [_mpd_track(t) for t in tracks], line, index)


def _line_of(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _recover_array(
    text: str, start: int, source: str, progress: bool
) -> Iterator[tuple[int, Any] | Rejection]:
    """Decode a JSON array element by element from ``start`` (just after "["), keeping every
    complete element before the first undecodable one; the rest becomes one rejection."""
    decoder = json.JSONDecoder()
    position, index = start, 0
    with _bar(None, f"recovering {Path(source).name}", "records", progress) as bar:
        while True:
            position = _skip_space(text, position)
            if position < len(text) and text[position] == "]" and index == 0:
                return
            try:
                value, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError as error:
                ending = "the file ends" if error.pos >= len(text.rstrip()) else error.msg
                yield _reject_playlist(
                    source,
                    f"record {index} is not complete JSON ({ending} at line {error.lineno} "
                    f"column {error.colno}); it and anything after it are lost",
                    text[position:],
                    _line_of(text, position),
                    index,
                    STAGE_READ,
                )
                return
            yield index, value
            bar.update(1)
            index += 1
            position = _skip_space(text, position)
            if position < len(text) and text[position] == ",":
                position += 1
                continue
            if position < len(text) and text[position] == "]":
                return
            reason = "the file ends inside the array" if position >= len(text) else "expected ','"
            yield _reject_playlist(
                source,
                f"{reason} after record {index - 1}; anything after it is lost",
                text[position:],
                _line_of(text, position),
                index,
                STAGE_READ,
            )
            return


def _read_text(path: Path) -> str:
    # Undecodable bytes become lone surrogates, so the strings holding them are rejected one by one.
    return path.read_bytes().decode("utf-8-sig", errors="surrogateescape")


def _array_records(
    text: str, source: str, progress: bool, opening: re.Pattern[str]
) -> Iterator[tuple[int, Any] | Rejection]:
    """Elements of the playlist array (whole-file decode first, element-wise recovery on error)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        match = opening.match(text)
        if match is None:
            yield _reject_playlist(
                source,
                f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno})",
                text,
                error.lineno,
                None,
                STAGE_READ,
            )
            return
        yield from _recover_array(text, match.end(), source, progress)
        return
    array = document.get("playlists") if isinstance(document, dict) else document
    if not isinstance(array, list):
        expected = "an object with a 'playlists' array" if isinstance(document, dict) else "array"
        yield _reject_playlist(
            source, f"the top level must be {expected}", text, 1, None, STAGE_READ
        )
        return
    yield from enumerate(
        tqdm(
            array,
            desc=f"reading {Path(source).name}",
            unit="records",
            disable=None if progress else True,
        )
    )


_ARRAY_OPENING = re.compile(r"\A\s*\[")
_MPD_OPENING = re.compile(r'\A\s*\{.*?"playlists"\s*:\s*\[', re.DOTALL)


def read_playlist_file(
    path: str | Path, input_format: InputFormat, *, progress: bool = True
) -> Iterator[PlaylistRecord | Rejection]:
    """Every playlist record of one file, or the rejection of what could not be read."""
    target = Path(path)
    source = str(target)
    if input_format == InputFormat.PLAYLIST_JSONL:
        yield from _read_jsonl(target, progress)
        return
    build = _mpd_playlist if input_format == InputFormat.SPOTIFY_MPD else _design_playlist
    opening = _MPD_OPENING if input_format == InputFormat.SPOTIFY_MPD else _ARRAY_OPENING
    for item in _array_records(_read_text(target), source, progress, opening):
        if isinstance(item, Rejection):
            yield item
        else:
            index, value = item
            yield build(value, source, None, index)


def _read_jsonl(path: Path, progress: bool) -> Iterator[PlaylistRecord | Rejection]:
    source = str(path)
    with (
        path.open("rb") as handle,
        _bar(path.stat().st_size, f"reading {path.name}", "B", progress) as bar,
    ):
        pending = 0
        for number, raw in enumerate(handle, start=1):
            pending += len(raw)
            if pending >= _PROGRESS_EVERY * 100:
                bar.update(pending)
                pending = 0
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                reason = f"not valid UTF-8 (byte {error.start})"
                yield _reject_playlist(
                    source, reason, raw.decode("latin-1"), number, None, STAGE_READ
                )
                continue
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                reason = f"invalid JSON ({error.msg} at column {error.colno})"
                yield _reject_playlist(source, reason, text, number, None, STAGE_READ)
                continue
            yield _design_playlist(value, source, number, None)
        bar.update(pending)


# -- MovieLens ratings -----------------------------------------------------------------------


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
    if input_format not in _MOVIELENS_LAYOUTS:
        raise InputError(
            f"{target}: looks like {input_format} playlists; use `segue ingest playlists`"
        )
    ratings_name, movies_name, encoding, separator = _MOVIELENS_LAYOUTS[input_format]
    directory = target if target.is_dir() else target.parent
    ratings_path, movies_path = directory / ratings_name, directory / movies_name
    if not movies_path.exists():
        raise InputError(f"{ratings_path}: the movie catalogue {movies_path} is missing")
    source = str(ratings_path)
    with _bar(2, f"reading {ratings_name}", "files", progress) as bar:
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
