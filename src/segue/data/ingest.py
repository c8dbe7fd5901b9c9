"""Ingestion: raw playlists or ratings -> readers -> song parsing -> business rules -> dataset.

Counting unit, so that input = kept + rejected can be checked from the files alone:

- playlists: playlist records AND song entries. Every record a reader meets counts as one
  playlist (an unreadable tail of a cut JSON array counts as one record). Song entries are
  counted inside the records that are valid playlists (an object with an id and a song list);
  the songs of a record rejected whole are not counted, but the record itself is, with its text.
  A playlist dropped by a rule is one "playlist" line in rejected.jsonl, and each of its
  remaining songs one "song" line, all with that rule as the stage.
- ratings: rating rows (lines of the ratings file other than the header and blank lines).
  Rejected lines of the movie catalogue are reported as "movie" lines, outside the identity.

Song strings are parsed once per distinct string, over the whole corpus at once, so the alias
table is learned from every file; a song that cannot be parsed is rejected alone and its
playlist keeps the rest.

Strict mode raises at the first unreadable or invalid record: playlist records are checked as
they are read, song entries once all records are in (they are parsed together), so a bad song
is reported only when no record-level problem came first. Rule drops are policy, never errors.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from segue import __version__
from segue.data.dataset import Dataset, DatasetKind, write_dataset
from segue.data.input_formats import InputError, has_lone_surrogate, json_type
from segue.data.movielens_readers import RatingsTable, read_ratings
from segue.data.playlist_readers import (
    InvalidSong,
    PlaylistRecord,
    find_playlist_files,
    read_playlist_file,
)
from segue.data.rejects import STAGE_PARSE, STAGE_READ, Rejection, RejectionLog, shorten
from segue.data.rules import RULE_ORDER, RulesOutcome, apply_rules, read_banned_ids
from segue.data.song_aliases import AliasTable
from segue.data.song_parser import SongParseError, parse_songs
from segue.settings import DataSettings

REJECTED_FILE = "rejected.jsonl"


@dataclass(frozen=True)
class _Counting:
    """How one kind of dataset is counted in its manifest (see the module docstring)."""

    kind: DatasetKind
    sequences: str  # what a sequence is called: "playlists" | "users"
    interactions: str  # what an interaction is called: "songs" | "ratings"
    kept_order: tuple[str, ...]  # the order of the manifest's "kept" counts
    rejected: dict[str, str]  # manifest name -> rejection unit
    accounted: tuple[str, ...]  # units for which input = kept + rejected must hold
    description: str

    def kept(self, interactions: pd.DataFrame, n_items: int) -> dict[str, int]:
        sizes = {
            self.sequences: int(interactions["sequence"].nunique()),
            self.interactions: len(interactions),
            "items": n_items,
        }
        return {name: sizes[name] for name in self.kept_order}


_PLAYLISTS = _Counting(
    kind="playlists",
    sequences="playlists",
    interactions="songs",
    kept_order=("playlists", "songs", "items"),
    rejected={"playlists": "playlist", "songs": "song"},
    accounted=("playlists", "songs"),
    description="playlist records and song entries (songs counted inside valid playlists)",
)
_RATINGS = _Counting(
    kind="ratings",
    sequences="users",
    interactions="ratings",
    kept_order=("ratings", "users", "items"),
    rejected={"ratings": "rating", "movies": "movie"},
    accounted=("ratings",),
    description="rating rows (lines of the ratings file, header and blank lines excluded)",
)


@dataclass(frozen=True)
class IngestResult:
    dataset: Dataset
    rejected_path: Path
    n_rejected: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_entry(path: Path, input_format: str, records: int) -> dict[str, Any]:
    return {
        "path": str(path),
        "format": input_format,
        "bytes": path.stat().st_size,
        "sha256": _sha256(path),
        "records": records,
    }


def _banned(settings: DataSettings) -> set[str]:
    path = settings.banned_users_file
    if path is not None and not Path(path).exists():
        raise InputError(f"data.banned_users_file {path}: no such file")
    return read_banned_ids(path)


def _rule_stages(outcome: RulesOutcome, counting: _Counting) -> list[dict[str, Any]]:
    def named(sizes: dict[str, int]) -> dict[str, int]:
        return {
            counting.sequences: sizes["sequences"],
            counting.interactions: sizes["interactions"],
            "items": sizes["items"],
        }

    return [
        {"stage": stage["stage"], "before": named(stage["before"]), "after": named(stage["after"])}
        for stage in outcome.stages
    ]


def _rank_items(item_codes: np.ndarray, n_codes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """New item indices, most interactions first (ties by code): (kept codes, counts, new index
    for every code, -1 when the code has no kept interaction)."""
    counts = np.bincount(item_codes, minlength=n_codes)
    used = np.flatnonzero(counts)
    ordered = used[np.lexsort((used, -counts[used]))]
    new_index = np.full(n_codes, -1, dtype=np.int64)
    new_index[ordered] = np.arange(len(ordered))
    return ordered, counts[ordered], new_index


def _interactions_frame(
    kept: pd.DataFrame, sequence_names: np.ndarray, new_index: np.ndarray, ratings: bool
) -> pd.DataFrame:
    codes = kept["sequence"].cat.codes.to_numpy() if len(kept) else np.empty(0, dtype=np.int64)
    ordered = kept.assign(_code=codes).sort_values(["_code", "position"], kind="stable")
    codes = ordered["_code"].to_numpy()
    position = ordered.groupby("_code", sort=False).cumcount().to_numpy(dtype=np.int64)
    timestamp = ordered["timestamp"].astype("Int64").reset_index(drop=True)
    return pd.DataFrame(
        {
            "sequence": sequence_names[codes],
            "item": new_index[ordered["item"].to_numpy()],
            "position": position,
            "timestamp": timestamp,
            "rating": ordered["rating"].to_numpy(dtype=np.float64) if ratings else np.nan,
        }
    )


def _finish(
    out: str | Path,
    counting: _Counting,
    *,
    outcome: RulesOutcome,
    sequence_ids: list[str],
    catalogue: pd.DataFrame,
    input_counts: dict[str, int],
    first_stages: list[dict[str, Any]],
    sources: list[dict[str, Any]],
    settings: DataSettings,
    log: RejectionLog,
    aliases: pd.DataFrame | None,
) -> IngestResult:
    """The tail every ingestion shares, after the rules ran and every rejection is logged.

    Numbers the kept items by popularity (``catalogue`` holds key, artist, title and any extra
    item column, one row per item code of ``outcome``), checks that input = kept + rejected for
    every counted unit, then writes the dataset, its ``dataset.json`` and ``rejected.jsonl``.
    """
    ordered, counts, new_index = _rank_items(outcome.kept["item"].to_numpy(), len(catalogue))
    chosen = catalogue.iloc[ordered]
    items = pd.DataFrame(
        {
            "item": np.arange(len(ordered), dtype=np.int64),
            **{column: chosen[column].to_numpy(dtype=object) for column in catalogue.columns},
            "count": counts.astype(np.int64),
        }
    )
    interactions = _interactions_frame(
        outcome.kept,
        np.asarray(sequence_ids, dtype=object),
        new_index,
        ratings=counting.kind == "ratings",
    )
    summary = {
        "input": input_counts,
        "kept": counting.kept(interactions, len(items)),
        "rejected": {name: log.count(unit) for name, unit in counting.rejected.items()},
    }
    for unit in counting.accounted:
        if summary["input"][unit] != summary["kept"][unit] + summary["rejected"][unit]:
            raise RuntimeError(f"ingestion lost {unit}: {summary}")
    manifest = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "segue_version": __version__,
        "sources": sources,
        "counting_unit": counting.description,
        "counts": summary,
        "stages": [*first_stages, *_rule_stages(outcome, counting)],
        "rules": {"order": list(RULE_ORDER), "k_core_rounds": outcome.rounds},
        "settings": settings.model_dump(mode="json"),
        "rejected": {"file": REJECTED_FILE, "lines": len(log), "by_stage": log.counts_by_stage()},
    }
    target = Path(out)
    dataset = write_dataset(target, counting.kind, items, interactions, manifest, aliases)
    return IngestResult(dataset, log.write(target / REJECTED_FILE), len(log))


# -- playlists -------------------------------------------------------------------------------


@dataclass
class _PlaylistCorpus:
    """Valid playlists in input order and all their song entries, concatenated."""

    ids: list[str]
    sources: list[str]
    lines: list[int | None]
    indexes: list[int | None]
    lengths: list[int]
    songs: list[Any]
    n_records: int
    files: list[dict[str, Any]]

    def entry_location(self) -> tuple[np.ndarray, np.ndarray]:
        """For every song entry: its playlist's number and its position inside that playlist."""
        lengths = np.asarray(self.lengths, dtype=np.int64)
        playlist_of = np.repeat(np.arange(len(lengths)), lengths)
        starts = np.cumsum(lengths) - lengths
        return playlist_of, np.arange(len(playlist_of)) - starts[playlist_of]


def _collect_playlists(
    paths: Sequence[str | Path], log: RejectionLog, progress: bool
) -> _PlaylistCorpus:
    """Read every file; keep valid playlist records, reject the rest (a repeated id included)."""
    corpus = _PlaylistCorpus([], [], [], [], [], [], 0, [])
    first_seen: dict[str, str] = {}
    files = [found for path in paths for found in find_playlist_files(path)]
    for path, input_format in files:
        records = 0
        for item in read_playlist_file(path, input_format, progress=progress):
            records += 1
            if isinstance(item, Rejection):
                log.add(item)
                continue
            location = _record_location(item)
            if item.playlist_id in first_seen:
                log.add(
                    Rejection(
                        unit="playlist",
                        source=item.source,
                        stage=STAGE_PARSE,
                        reason=f"playlist id {item.playlist_id!r} repeats "
                        f"(first at {first_seen[item.playlist_id]})",
                        record=shorten({"id": item.playlist_id, "songs": item.songs}),
                        line=item.line,
                        index=item.index,
                        sequence=item.playlist_id,
                    )
                )
                continue
            first_seen[item.playlist_id] = location
            corpus.ids.append(item.playlist_id)
            corpus.sources.append(item.source)
            corpus.lines.append(item.line)
            corpus.indexes.append(item.index)
            corpus.lengths.append(len(item.songs))
            corpus.songs.extend(item.songs)
        corpus.n_records += records
        corpus.files.append(_source_entry(path, str(input_format), records))
    return corpus


def _record_location(record: PlaylistRecord) -> str:
    where = f"line {record.line}" if record.line is not None else f"record {record.index}"
    return f"{record.source}, {where}"


@dataclass
class _ParsedCorpus:
    """Per song entry: the song key code (-1 when rejected) and why a rejected one was."""

    entry_keys: np.ndarray
    entry_reasons: dict[int, str]
    items: pd.DataFrame  # key, artist, title, indexed by key code
    aliases: AliasTable


def _unique_problems(uniques: np.ndarray, max_length: int) -> list[str | None]:
    """A reason for each distinct string that is unusable before parsing, else None."""
    problems: list[str | None] = [None] * len(uniques)
    joined_ok = not has_lone_surrogate("".join(uniques.tolist()))
    for position, text in enumerate(uniques.tolist()):
        if not text.strip():
            problems[position] = "empty song string"
        elif len(text) > max_length:
            problems[position] = (
                f"song string is {len(text):,} characters, longer than "
                f"data.max_song_length = {max_length}"
            )
        elif not joined_ok and has_lone_surrogate(text):
            problems[position] = "song string is not valid Unicode (lone surrogate)"
    return problems


def _announce(progress: bool, message: str) -> None:
    # Same rule as the tqdm bars: only on an interactive terminal.
    if progress and sys.stderr.isatty():
        tqdm.write(message, file=sys.stderr)


def _parse_corpus(songs: list[Any], max_length: int, progress: bool) -> _ParsedCorpus:
    """Validate and parse every distinct song string once; map the result back to the entries."""
    entries = np.fromiter(songs, dtype=object, count=len(songs))
    is_text = np.fromiter((type(song) is str for song in songs), dtype=bool, count=len(songs))
    reasons: dict[int, str] = {}
    for position in np.flatnonzero(~is_text).tolist():
        value = entries[position]
        reasons[position] = (
            value.reason
            if isinstance(value, InvalidSong)
            else f"a song must be a string, got {json_type(value)}"
        )
    text_positions = np.flatnonzero(is_text)
    codes, uniques = pd.factorize(entries[text_positions])
    uniques = np.asarray(uniques, dtype=object)
    problems = _unique_problems(uniques, max_length)
    _announce(progress, f"parsing {len(uniques):,} distinct song strings of {len(songs):,} entries")
    candidates = [i for i, problem in enumerate(problems) if problem is None]
    results, aliases = parse_songs([uniques[i] for i in candidates], max_length=max_length)
    parsed_at: list[int] = []
    keys: list[str] = []
    artists: list[str] = []
    titles: list[str] = []
    for unique, result in zip(candidates, results, strict=True):
        if isinstance(result, SongParseError):
            problems[unique] = f"cannot parse the song: {result.reason}"
            continue
        parsed_at.append(unique)
        keys.append(result.key)
        artists.append(result.artist)
        titles.append(result.title)
    key_codes, key_names = pd.factorize(np.array(keys, dtype=object))
    unique_key = np.full(len(uniques), -1, dtype=np.int64)
    unique_key[parsed_at] = key_codes
    entry_keys = np.full(len(songs), -1, dtype=np.int64)
    entry_keys[text_positions] = unique_key[codes]
    unparsed = unique_key[codes] < 0
    for position, code in zip(
        text_positions[unparsed].tolist(), codes[unparsed].tolist(), strict=True
    ):
        reasons[position] = str(problems[code])
    # Display names come from the most used written variant of each key (ties: first seen).
    uses = np.bincount(codes, minlength=len(uniques))[parsed_at]
    order = np.lexsort((np.arange(len(parsed_at)), -uses, key_codes))
    best = order[np.r_[True, np.diff(key_codes[order]) != 0]] if len(order) else order
    items = pd.DataFrame(
        {
            "key": np.asarray(key_names, dtype=object),
            "artist": np.array(artists, dtype=object)[best],
            "title": np.array(titles, dtype=object)[best],
        }
    )
    return _ParsedCorpus(entry_keys, reasons, items, aliases)


def _playlist_frame(corpus: _PlaylistCorpus, parsed: _ParsedCorpus) -> pd.DataFrame:
    playlist_of, song_of = corpus.entry_location()
    entry = np.arange(len(playlist_of))
    valid = parsed.entry_keys >= 0
    kept = int(valid.sum())
    return pd.DataFrame(
        {
            "sequence": pd.Categorical.from_codes(playlist_of[valid], categories=corpus.ids),
            "item": parsed.entry_keys[valid],
            "position": song_of[valid],
            "timestamp": pd.arrays.IntegerArray(
                np.zeros(kept, dtype=np.int64), np.ones(kept, dtype=bool)
            ),
            "rating": np.full(kept, np.nan),
            "entry": entry[valid],
        }
    )


def _song_rejection(
    corpus: _PlaylistCorpus, playlist: int, song: int, entry: int, stage: str, reason: str
) -> Rejection:
    value = corpus.songs[entry]
    return Rejection(
        unit="song",
        source=corpus.sources[playlist],
        stage=stage,
        reason=reason,
        record=shorten(value.value if isinstance(value, InvalidSong) else value),
        line=corpus.lines[playlist],
        index=corpus.indexes[playlist],
        song=song,
        sequence=corpus.ids[playlist],
    )


def _playlist_rejection(
    corpus: _PlaylistCorpus, playlist: int, stage: str, reason: str
) -> Rejection:
    return Rejection(
        unit="playlist",
        source=corpus.sources[playlist],
        stage=stage,
        reason=reason,
        record=corpus.ids[playlist],
        line=corpus.lines[playlist],
        index=corpus.indexes[playlist],
        sequence=corpus.ids[playlist],
    )


def _reject_song_entries(
    corpus: _PlaylistCorpus, entries: np.ndarray, stage: str, reasons: list[str], log: RejectionLog
) -> None:
    playlist_of, song_of = corpus.entry_location()
    for entry, reason in zip(entries.tolist(), reasons, strict=True):
        playlist, song = int(playlist_of[entry]), int(song_of[entry])
        log.add(_song_rejection(corpus, playlist, song, entry, stage, reason))


def _reject_rule_drops(
    outcome: RulesOutcome,
    corpus: _PlaylistCorpus,
    settings: DataSettings,
    log: RejectionLog,
) -> None:
    """Song lines for every dropped entry, then playlist lines for every dropped playlist."""
    position_of = {identifier: number for number, identifier in enumerate(corpus.ids)}
    dropped = outcome.dropped
    short_sizes = (
        dropped.loc[dropped["stage"] == "min_sequence_length", "sequence"]
        .value_counts(sort=False)
        .to_dict()
    )
    sequence_reasons: dict[str, Callable[[str], str]] = {
        "banned_users": lambda _: "playlist is on the banned list (data.banned_users_file)",
        "bot_users": lambda _: "playlist flagged as a bot by data.bot_max_interactions",
        "min_sequence_length": lambda identifier: (
            f"{short_sizes.get(identifier, 0)} songs left after the other rules, fewer than "
            f"data.min_sequence_length = {settings.min_sequence_length}"
        ),
    }
    for stage in RULE_ORDER:
        rows = dropped[dropped["stage"] == stage]
        _reject_song_entries(corpus, rows["entry"].to_numpy(), stage, rows["reason"].tolist(), log)
        for identifier in outcome.dropped_sequences.get(stage, []):
            number = position_of[identifier]
            log.add(_playlist_rejection(corpus, number, stage, sequence_reasons[stage](identifier)))


def ingest_playlists(
    paths: Sequence[str | Path],
    out: str | Path,
    settings: DataSettings,
    *,
    strict: bool = False,
    progress: bool = True,
) -> IngestResult:
    """Ingest playlist files (JSON, JSON Lines, Spotify MPD slices) into a dataset at ``out``."""
    banned = _banned(settings)
    log = RejectionLog(strict=strict)
    corpus = _collect_playlists(paths, log, progress)
    read_dropped = log.count("playlist", STAGE_READ)
    parse_dropped_playlists = log.count("playlist", STAGE_PARSE)
    parsed = _parse_corpus(corpus.songs, settings.max_song_length, progress)
    unparsed = np.array(sorted(parsed.entry_reasons), dtype=np.int64)
    reasons = [parsed.entry_reasons[entry] for entry in unparsed.tolist()]
    _reject_song_entries(corpus, unparsed, STAGE_PARSE, reasons, log)
    frame = _playlist_frame(corpus, parsed)
    outcome = apply_rules(frame, settings, banned, sequence_ids=corpus.ids)
    _reject_rule_drops(outcome, corpus, settings, log)

    after_read = corpus.n_records - read_dropped
    first_stages = [
        {
            "stage": STAGE_READ,
            "before": {"playlists": corpus.n_records},
            "after": {"playlists": after_read},
        },
        {
            "stage": STAGE_PARSE,
            "before": {"playlists": after_read, "songs": len(corpus.songs)},
            "after": {
                "playlists": after_read - parse_dropped_playlists,
                "songs": len(frame),
                "items": len(parsed.items),
            },
        },
    ]
    return _finish(
        out,
        _PLAYLISTS,
        outcome=outcome,
        sequence_ids=corpus.ids,
        catalogue=parsed.items,
        input_counts={"playlists": corpus.n_records, "songs": len(corpus.songs)},
        first_stages=first_stages,
        sources=corpus.files,
        settings=settings,
        log=log,
        aliases=parsed.aliases.to_frame(),
    )


# -- ratings ---------------------------------------------------------------------------------


def _positions_in_time_order(
    users: np.ndarray, timestamps: np.ndarray, lines: np.ndarray
) -> np.ndarray:
    """Each rating's rank inside its user's history, by time and then by file order."""
    order = np.lexsort((lines, timestamps, users))
    position = np.empty(len(order), dtype=np.int64)
    if not len(order):
        return position
    starts = np.r_[0, np.flatnonzero(np.diff(users[order])) + 1]
    run_lengths = np.diff(np.r_[starts, len(order)])
    position[order] = np.arange(len(order)) - np.repeat(starts, run_lengths)
    return position


def _reject_rating_rows(dropped: pd.DataFrame, table: RatingsTable, log: RejectionLog) -> None:
    for stage in RULE_ORDER:
        rows = dropped[dropped["stage"] == stage].sort_values("line", kind="stable")
        for line, user, reason in zip(
            rows["line"].tolist(), rows["sequence"].tolist(), rows["reason"].tolist(), strict=True
        ):
            log.add(
                Rejection(
                    unit="rating",
                    source=table.source,
                    stage=stage,
                    reason=reason,
                    record=shorten(table.lines[line - 1]),
                    line=line,
                    sequence=str(user),
                )
            )


def ingest_ratings(
    path: str | Path,
    out: str | Path,
    settings: DataSettings,
    *,
    strict: bool = False,
    progress: bool = True,
) -> IngestResult:
    """Ingest MovieLens ratings (latest-small CSV, ml-100k or ml-1m) into a dataset at ``out``."""
    banned = _banned(settings)
    log = RejectionLog(strict=strict)
    table = read_ratings(path, progress=progress)
    log.extend(table.rejections)
    ratings = table.ratings
    user_codes, users = pd.factorize(ratings["user"])
    movie_codes, movies = pd.factorize(ratings["movie"])
    position = _positions_in_time_order(
        user_codes, ratings["timestamp"].to_numpy(), ratings["line"].to_numpy()
    )
    user_ids = [str(user) for user in users]
    frame = pd.DataFrame(
        {
            "sequence": pd.Categorical.from_codes(user_codes, categories=user_ids),
            "item": movie_codes.astype(np.int64),
            "position": position,
            "timestamp": pd.array(ratings["timestamp"].to_numpy(), dtype="Int64"),
            "rating": ratings["rating"].to_numpy(),
            "line": ratings["line"].to_numpy(),
        }
    )
    outcome = apply_rules(frame, settings, banned, sequence_ids=user_ids)
    _reject_rating_rows(outcome.dropped, table, log)

    movie_ids = np.asarray(movies, dtype=object)
    listed = table.movies.set_index("movie").loc[movie_ids]
    catalogue = pd.DataFrame(
        {
            "key": movie_ids,
            "artist": np.full(len(movie_ids), "", dtype=object),
            "title": listed["title"].to_numpy(dtype=object),
            "genres": listed["genres"].to_numpy(dtype=object),
        }
    )
    after_read = table.n_records - log.count("rating", STAGE_READ)
    first_stages = [
        {
            "stage": STAGE_READ,
            "before": {"ratings": table.n_records},
            "after": {"ratings": after_read},
        },
        {
            "stage": STAGE_PARSE,
            "before": {"ratings": after_read},
            "after": {"ratings": len(frame), "users": len(user_ids), "items": len(movies)},
        },
    ]
    sources = [
        _source_entry(Path(table.source), str(table.input_format), table.n_records),
        _source_entry(Path(table.movies_source), "movies", len(table.movies)),
    ]
    return _finish(
        out,
        _RATINGS,
        outcome=outcome,
        sequence_ids=user_ids,
        catalogue=catalogue,
        input_counts={"ratings": table.n_records},
        first_stages=first_stages,
        sources=sources,
        settings=settings,
        log=log,
        aliases=None,
    )
