"""What every raw-file reader shares: the input formats, telling them apart, and text checks.

Readers decode and check structure only; song strings are parsed later, once per distinct string.
Playlists are read by :mod:`segue.data.playlist_readers`, MovieLens ratings by
:mod:`segue.data.movielens_readers`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from tqdm import tqdm


class InputFormat(StrEnum):
    PLAYLIST_JSON = "playlist-json"
    PLAYLIST_JSONL = "playlist-jsonl"
    SPOTIFY_MPD = "spotify-mpd"
    MOVIELENS_CSV = "movielens-csv"
    MOVIELENS_100K = "movielens-100k"
    MOVIELENS_1M = "movielens-1m"


PLAYLIST_FORMATS = (InputFormat.PLAYLIST_JSON, InputFormat.PLAYLIST_JSONL, InputFormat.SPOTIFY_MPD)

# ratings file, movies file, encoding, separator: the three MovieLens layouts Segue reads.
MOVIELENS_LAYOUTS = {
    InputFormat.MOVIELENS_CSV: ("ratings.csv", "movies.csv", "utf-8", ","),
    InputFormat.MOVIELENS_100K: ("u.data", "u.item", "latin-1", "\t"),
    InputFormat.MOVIELENS_1M: ("ratings.dat", "movies.dat", "latin-1", "::"),
}


class InputError(ValueError):
    """A path cannot be read at all: missing, of an unknown format, or lacking a companion file."""


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


def progress_bar(total: int | None, description: str, unit: str, progress: bool) -> tqdm:
    # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, tests).
    return tqdm(total=total, desc=description, unit=unit, disable=None if progress else True)


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
        for input_format, (ratings, movies, _, _) in MOVIELENS_LAYOUTS.items():
            if (target / ratings).exists() and (target / movies).exists():
                return input_format
        raise InputError(
            f"{target}: a directory of ratings needs ratings.csv + movies.csv, u.data + u.item "
            "or ratings.dat + movies.dat; for playlists pass the directory to `ingest playlists`"
        )
    for input_format, (ratings, _, _, _) in MOVIELENS_LAYOUTS.items():
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
