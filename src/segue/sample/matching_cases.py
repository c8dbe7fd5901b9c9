"""The labelled song-matching set: free text, the catalogue key it names (or none), and its kind.

Serving matches what people type to catalogue songs; a wrong match is worse than none, so the
fuzzy threshold is chosen on a set whose truth is known. The catalogue is what ingestion would
make of seeded synthetic playlists (:func:`segue.sample.synth.generate_playlists`) plus the songs
of the song parser's own test cases; the cases are:

positives (the key is in the catalogue)
  ``tracklist`` a line as a playlist wrote it; ``parser_case`` a parser test string;
  ``case_spacing``, ``decoration``, ``feat``, ``alias`` (the artist by its other-script name);
  ``typo_title``, ``typo_artist`` (one edit: a letter changed, dropped, added or two swapped);
  ``typo_decorated`` (a title typo plus a decoration); ``title_only`` (a title no other song has).
negatives (no catalogue song is meant)
  ``made_up_artist`` ("Zq417 Summer - Golden City Night", "The Quiet Kites", "가나다": names
  no generated artist has, with titles real or invented);
  ``absent_song`` (a generated song that no playlist played, so ingestion never saw it) and
  ``absent_typo`` (one misspelt);
  ``new_title`` (a catalogue artist with a title they do not have); ``other_version``
  (a catalogue song as a remix, acoustic or live-session version it does not have);
  ``parser_case`` (the parser's "different songs" held out of the catalogue, and strangers).

Same constants, same file: ``python -m segue.sample.matching_cases <out.jsonl>`` writes it (the
committed copy is ``tests/fixtures/matching/labelled.jsonl``); :func:`labelled_catalogue`
rebuilds its catalogue.
"""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segue.data.song_aliases import AliasTable
from segue.data.song_parser import ParsedSong, SongParseError, parse_song, parse_songs
from segue.data.song_text import normalize_artist
from segue.sample.synth import generate_playlists

SEED = 20261201
N_SONGS = 6000
N_PLAYLISTS = 1200
POSITIVE_SONGS = 260
PARSER_TESTS = Path("tests/data/test_song_parser.py")

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DECORATIONS = (
    " (Official Video)", " [Official MV]", " (Lyric Video)", " (Radio Edit)",
    " [HD]", " (Remastered 2015)", " | Lyrics", " 【MV】", " (Visualizer)", " [가사]",
    " (Official Audio)", " (Color Coded Lyrics Eng/Han)",
)  # fmt: skip
_FEAT_FORMS = (
    "{artist} - {title} (feat. {other})", "{artist} ft. {other} - {title}",
    "{artist} featuring {other} - {title}", "{artist} - {title} (with {other})",
    "{artist} - {title} [Feat. {other}]", "{artist} (feat. {other}) - {title}",
)  # fmt: skip
_VERSIONS = (" (Remix)", " (Acoustic Ver.)", " (Inst.)", " (Piano Version)", " (Sped Up)")
_MADE_UP_WORDS = (
    "City Night", "Paper Planes", "Last Train", "Neon Tears", "Sugar Rush", "Blue Hour",
    "Falling Slowly", "Static Love", "Wildfire", "Glass Hearts", "Runaway", "Ocean Eyes",
    "Borrowed Time", "Northern Lights", "Silver Lining", "Golden Hour", "Daydream",
    "Midnight Call", "Cherry Wine", "Moonwalk",
)  # fmt: skip
_ADJECTIVES = ("Summer", "Golden", "Velvet", "Neon", "Quiet", "Lunar", "Electric", "Hollow")
_NOUNS = ("Tigers", "Radios", "Pilots", "Foxes", "Kites", "Rivers", "Lamps", "Wolves")
_HANGUL = "가나다라마바사자차카타파하거너더러머버서"
_STRANGERS = (
    "Metallica - One",
    "Zzyzx Qqq - Unknown Song Nobody Has",
    "nothing at all here",
    "Radiohead - Creep",
    "Queen - Bohemian Rhapsody",
    "Daft Punk - Get Lucky",
)


@dataclass(frozen=True)
class MatchingCase:
    """One labelled string: what was typed, the catalogue key it names (None: none), its kind."""

    text: str
    expected: str | None
    kind: str


@dataclass(frozen=True)
class LabelledCatalogue:
    """The catalogue of the labelled set, as a model package holds it (items and aliases)."""

    items: pd.DataFrame
    aliases: pd.DataFrame


def catalogue_from_strings(strings: Sequence[str]) -> tuple[pd.DataFrame, AliasTable, list]:
    """What ingestion makes of song strings: items (key, most used display form, count; numbered
    most played first), the alias table, and each string's key (None when it cannot be parsed)."""
    results, table = parse_songs(strings)
    keys = [r.key if isinstance(r, ParsedSong) else None for r in results]
    parsed = [r for r in results if isinstance(r, ParsedSong)]
    frame = pd.DataFrame(
        {
            "key": [r.key for r in parsed],
            "artist": [r.artist for r in parsed],
            "title": [r.title for r in parsed],
        }
    )
    variants = frame.groupby(["key", "artist", "title"], sort=False).size().reset_index()
    variants.columns = ["key", "artist", "title", "uses"]
    shown = variants.sort_values(["key", "uses"], ascending=[True, False], kind="stable")
    shown = shown.drop_duplicates("key")
    counts = frame["key"].value_counts()
    items = shown.assign(count=shown["key"].map(counts).astype(np.int64))
    items = items.sort_values(["count", "key"], ascending=[False, True], kind="stable")
    items = items.reset_index(drop=True)
    items.insert(0, "item", np.arange(len(items), dtype=np.int64))
    return items[["item", "key", "artist", "title", "count"]], table, keys


def world_catalogue(n_songs: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every song of a synthetic world as a catalogue (for speed at a given size): items,
    aliases, and the world's songs (``PlaylistTruth.songs``) aligned with the items by key."""
    _, truth = generate_playlists(0, n_songs, seed, with_truth=True)
    songs = truth.songs
    strings = [
        f"{artist} ({alias}) - {title}" if alias else f"{artist} - {title}"
        for artist, alias, title in zip(
            songs["artist"], songs["artist_alias"], songs["title"], strict=True
        )
    ]
    results, table = parse_songs(strings)
    counts = np.maximum(1, np.round(songs["popularity"].to_numpy() * 50 * n_songs)).astype(int)
    items = pd.DataFrame(
        {
            "item": np.arange(n_songs, dtype=np.int64),
            "key": [r.key for r in results],
            "artist": [r.artist for r in results],
            "title": [r.title for r in results],
            "count": counts,
        }
    )
    return items, table.to_frame(), songs


def read_parser_cases(path: Path = PARSER_TESTS) -> tuple[dict, list, list]:
    """``PARSED``, ``SAME_SONG`` and ``DIFFERENT_SONGS`` of the parser's tests, read as data."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            name = getattr(node.targets[0], "id", "")
            if name in ("PARSED", "SAME_SONG", "DIFFERENT_SONGS"):
                found[name] = ast.literal_eval(node.value)
    return found["PARSED"], found["SAME_SONG"], found["DIFFERENT_SONGS"]  # type: ignore[return-value]


def _one_edit(text: str, rng: np.random.Generator) -> str | None:
    """``text`` with one typo in its Latin letters, or None when it has fewer than four."""
    positions = [i for i, c in enumerate(text) if c.isascii() and c.isalpha()]
    if len(positions) < 4:
        return None
    at = positions[int(rng.integers(len(positions)))]
    kind = int(rng.integers(4))
    original = text[at]
    letter = _LETTERS[int(rng.integers(len(_LETTERS)))]
    letter = letter.upper() if original.isupper() else letter
    if kind == 0 and letter.casefold() != original.casefold():
        return text[:at] + letter + text[at + 1 :]
    if kind == 1:
        return text[:at] + text[at + 1 :]
    if kind == 2:
        return text[:at] + letter + text[at:]
    following = text[at + 1 : at + 2]
    if following.isalpha() and following.casefold() != original.casefold():
        return text[:at] + following + original + text[at + 2 :]
    return text[:at] + text[at + 1 :]


def _case_spacing(artist: str, title: str, rng: np.random.Generator) -> str:
    forms = (
        f"{artist.upper()} - {title.upper()}",
        f"{artist.lower()} - {title.lower()}",
        f"   {artist}   -   {title}  ",
        f"{artist}-  {title}",
        f"{artist} - {' '.join(title)}" if not title.isascii() else f"{artist} | {title}",
        f"{artist}\t-\t{title}",
    )
    return forms[int(rng.integers(len(forms)))]


class _CaseWriter:
    """Collects cases, checking each against the catalogue the way serving would parse it."""

    def __init__(self, keys: set[str], table: AliasTable) -> None:
        self.keys = keys
        self.table = table
        self.cases: list[MatchingCase] = []
        self._texts: set[str] = set()

    def parsed_key(self, text: str) -> str | None:
        try:
            return parse_song(text, self.table).key
        except SongParseError:
            return None

    def positive(self, text: str | None, expected: str, kind: str) -> None:
        if text and text not in self._texts:
            key = self.parsed_key(text)
            # A typo that spells another catalogue song is that song, not a near miss.
            if key is None or key == expected or key not in self.keys:
                self._add(MatchingCase(text, expected, kind))

    def negative(self, text: str, kind: str) -> None:
        if text not in self._texts and self.parsed_key(text) not in self.keys:
            self._add(MatchingCase(text, None, kind))

    def _add(self, case: MatchingCase) -> None:
        self._texts.add(case.text)
        self.cases.append(case)


def _made_up_artist(rng: np.random.Generator, known: set[str]) -> str:
    while True:
        style = int(rng.integers(3))
        if style == 0:
            letters = "".join(_LETTERS[int(i)] for i in rng.integers(0, 26, size=2))
            name = f"{letters.title()}{int(rng.integers(100, 1000))} {_pick(_ADJECTIVES, rng)}"
        elif style == 1:
            name = f"The {_pick(_ADJECTIVES, rng)} {_pick(_NOUNS, rng)}"
        else:
            name = "".join(_HANGUL[int(i)] for i in rng.integers(0, len(_HANGUL), size=3))
        if normalize_artist(name) not in known:
            return name


def _pick(values: Sequence[str], rng: np.random.Generator) -> str:
    return values[int(rng.integers(len(values)))]


def generate_cases(parser_tests: Path = PARSER_TESTS) -> tuple[LabelledCatalogue, list]:
    """The labelled catalogue and its cases (same constants, same result)."""
    rng = np.random.default_rng(SEED)
    records, truth = generate_playlists(N_PLAYLISTS, N_SONGS, SEED, with_truth=True)
    parsed_cases, same_song, different_songs = read_parser_cases(parser_tests)
    held_out = {parse_song(second).key for _, second in different_songs}
    parser_lines = [
        raw
        for raw in [*parsed_cases, *(line for group in same_song for line in group)]
        if parse_song(raw).artist and parse_song(raw).key not in held_out
    ]
    parser_lines += [first for first, _ in different_songs]
    entries = [
        (song, int(song_id))
        for record, ids in zip(records, truth.song_ids, strict=True)
        for song, song_id in zip(record.get("songs") or [], ids.tolist(), strict=True)
        if isinstance(song, str)
    ]
    strings = [song for song, _ in entries] + parser_lines
    items, table, keys = catalogue_from_strings(strings)
    catalogue_keys = set(items["key"])
    votes: dict[int, Counter] = {}
    written: dict[int, list[str]] = {}
    for key, (song, song_id) in zip(keys[: len(entries)], entries, strict=True):
        if key is not None and song_id >= 0:
            votes.setdefault(song_id, Counter())[key] += 1
            written.setdefault(song_id, []).append(song)
    key_of_song = {song_id: counter.most_common(1)[0][0] for song_id, counter in votes.items()}
    writer = _CaseWriter(catalogue_keys, table)
    songs = truth.songs
    known_artists = {normalize_artist(name) for name in songs["artist"]} | {
        normalize_artist(alias) for alias in songs["artist_alias"] if alias
    }

    # -- positives: songs of the catalogue written the ways people write them
    played = np.array(sorted(key_of_song), dtype=np.int64)
    chosen = rng.choice(played, size=min(POSITIVE_SONGS, len(played)), replace=False)
    title_keys = Counter(key.split("|", 1)[1] for key in catalogue_keys)
    for song_id in chosen.tolist():
        row = songs.iloc[song_id]
        artist, alias, title = row["artist"], row["artist_alias"], row["title"]
        expected = key_of_song[song_id]
        other = songs["artist"].iloc[int(rng.integers(len(songs)))]
        writer.positive(_pick(written[song_id], rng), expected, "tracklist")
        writer.positive(_case_spacing(artist, title, rng), expected, "case_spacing")
        writer.positive(f"{artist} - {title}{_pick(_DECORATIONS, rng)}", expected, "decoration")
        form = _pick(_FEAT_FORMS, rng)
        writer.positive(form.format(artist=artist, title=title, other=other), expected, "feat")
        if alias:
            text = f"{alias} - {title}" if rng.random() < 0.5 else f"{alias} ({artist}) - {title}"
            writer.positive(text, expected, "alias")
        typo = _one_edit(title, rng)
        writer.positive(typo and f"{artist} - {typo}", expected, "typo_title")
        typo = _one_edit(artist, rng)
        writer.positive(typo and f"{typo} - {title}", expected, "typo_artist")
        typo = _one_edit(title, rng)
        decorated = typo and f"{artist} - {typo}{_pick(_DECORATIONS, rng)}"
        writer.positive(decorated, expected, "typo_decorated")
        if title_keys[expected.split("|", 1)[1]] == 1:
            writer.positive(title, expected, "title_only")
    for raw in parsed_cases:
        key = writer.parsed_key(raw)
        if key in catalogue_keys:
            writer.positive(raw, key, "parser_case")
        elif raw.strip(" -") in ("밤편지", "IU-Palette"):
            # No artist written: the title alone (or glued to the artist) names IU's song.
            writer.positive(raw, "iu|밤편지" if "밤편지" in raw else "iu|palette", "parser_case")
    for group in same_song:
        for raw in group:
            writer.positive(raw, writer.parsed_key(raw) or "", "parser_case")

    # -- negatives: songs the catalogue does not have
    titles = songs["title"].tolist()
    for _ in range(360):
        title = _pick(titles, rng) if rng.random() < 0.5 else _pick(_MADE_UP_WORDS, rng)
        writer.negative(f"{_made_up_artist(rng, known_artists)} - {title}", "made_up_artist")
    absent = np.setdiff1d(np.arange(len(songs)), played)
    for song_id in rng.choice(absent, size=min(320, len(absent)), replace=False).tolist():
        row = songs.iloc[song_id]
        text = _case_spacing(row["artist"], row["title"], rng)
        writer.negative(
            text if rng.random() < 0.5 else f"{row['artist']} - {row['title']}", "absent_song"
        )
    for song_id in rng.choice(absent, size=min(160, len(absent)), replace=False).tolist():
        typo = _one_edit(songs["title"].iloc[song_id], rng)
        if typo:
            writer.negative(f"{songs['artist'].iloc[song_id]} - {typo}", "absent_typo")
    for song_id in rng.choice(played, size=200, replace=False).tolist():
        row = songs.iloc[song_id]
        writer.negative(f"{row['artist']} - {_pick(_MADE_UP_WORDS, rng)}", "new_title")
    for song_id in rng.choice(played, size=160, replace=False).tolist():
        row = songs.iloc[song_id]
        writer.negative(f"{row['artist']} - {row['title']}{_pick(_VERSIONS, rng)}", "other_version")
    for _, second in different_songs:
        if parse_song(second).artist:
            writer.negative(second, "parser_case")
    for raw in [*(r for r in parsed_cases if not parse_song(r).artist), *_STRANGERS]:
        if raw.strip(" -") not in ("밤편지", "IU-Palette"):
            writer.negative(raw, "parser_case")
    return LabelledCatalogue(items, table.to_frame()), writer.cases


def labelled_catalogue(parser_tests: Path = PARSER_TESTS) -> LabelledCatalogue:
    """The catalogue the committed labelled set refers to."""
    return generate_cases(parser_tests)[0]


def read_cases(path: str | Path) -> list[MatchingCase]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [MatchingCase(**json.loads(line)) for line in lines if line.strip()]


def write_cases(cases: Iterable[MatchingCase], path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(asdict(case), ensure_ascii=False) for case in cases]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/matching/labelled.jsonl"
    _, generated = generate_cases()
    print(f"{len(generated)} cases -> {write_cases(generated, out)}")
