"""Playlist readers: JSON arrays, JSON Lines and Spotify MPD slices.

Readers decode and check structure only; song strings are parsed later, once per distinct string.
Each yields a ``PlaylistRecord`` or a ``Rejection`` per record, with its location (file plus line
for JSON Lines, array index for JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from segue.data.input_formats import (
    PLAYLIST_FORMATS,
    InputError,
    InputFormat,
    detect_format,
    has_lone_surrogate,
    json_type,
    progress_bar,
)
from segue.data.rejects import STAGE_PARSE, STAGE_READ, Rejection, shorten

_PROGRESS_EVERY = 10_000


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
    with progress_bar(None, f"recovering {Path(source).name}", "records", progress) as bar:
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
        progress_bar(path.stat().st_size, f"reading {path.name}", "B", progress) as bar,
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
