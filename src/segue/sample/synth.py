"""Seeded synthetic data shaped like the real inputs: YouTube playlist tracklists and MovieLens
ratings.

Why: the real playlist data cannot be shipped, and tests need data whose truth is known. Each
generator first builds a latent world (songs on mood paths, users with tastes), then writes it out
the messy way real sources do, and can hand back the truth. Same seed, same bytes.

Playlists
=========
Latent world
  * Artists are invented: Korean names built from hangul syllables (each syllable carries its
    romanisation, so an artist can have an alias such as ``하린솔 (HARINSOL)``), Latin-letter groups
    with a hangul alias, and English band names (``The Velvet Harbors``, alias ``Velvet Harbors``).
  * Every artist has one of six genres; its songs share it. Song popularity follows a Zipf-like
    curve (weight ``1 / rank`` over a random ranking).
  * ORDER CARRIES SIGNAL: inside each genre the songs sit on a *mood path*, sorted by a latent
    energy value; the successors of a song are the next four songs on its path. A playlist draws
    a sparse taste mixture over genres; its first song is a popularity draw from that mixture, and
    each later step follows the path with probability ``order_strength`` (successor 1-4 with
    weights 0.4 / 0.3 / 0.2 / 0.1 times their popularity) or else jumps to a fresh popularity
    draw. Repeats inside a playlist are redrawn (a few survive in small catalogues). So the next
    song depends on the current one: a first-order Markov model recovers the path; popularity
    alone cannot.

Rendering (the same song appears written in several ways)
  * prefix per playlist: none, a running timestamp (``00:00 ``, ``[03:41] ``, ``(1:02:15) ``,
    ``07:12 - ``) or a track number (``1. ``, ``01. ``, ``1) ``, ``#1 ``);
  * artist as written: canonical, with its alias in brackets (``name (alias)`` or
    ``name(alias)``), alias only, lower case, upper case, extra inner spaces; English bands also
    lose their leading "The" through the alias;
  * separators `` - ``, `` – ``, `` — ``, `` | ``, `` － ``, ``－`` and uneven spacing around ``-``;
  * title: canonical, lower case, upper case, extra inner spaces;
  * featured artists (12% of songs) on the artist side (``A feat. B``, ``A ft. B``, ``A featuring
    B``, ``A (feat. B)``), on the title side (``T (feat. B)``, ``T [feat. B]``, ``T ft. B``) or left
    out;
  * decorations after the title (``(Official Video)``, ``[MV]``, ``(Lyrics)``, ``(Audio)``,
    ``[4K]``, ``【MV】``, ...) or rarely before the artist (``[MV] ``), emoji at either end,
    stray leading or trailing spaces.

Malformed records: ``round(malformed_rate * n_playlists)`` records carry exactly one of
``MALFORMED_KINDS``:
  * ``missing_songs``: no "songs" key;  ``null_songs``: "songs" is null;
  * ``empty_song``: one song is ""; ``non_string_song``: one song is a JSON number;
  * ``long_song``: one song is 1,000 to 3,000 characters long;
  * ``no_separator``: one song is a bare title with no artist and no separator.

Ratings
=======
MovieLens latest-small layout. Users and movies have latent factors (movie factors come from the
movie's genres plus noise), so collaborative filtering has signal; movie exposure is long-tailed;
users pick what they are exposed to and like; ratings are on the 0.5-5 half-star scale (a quarter
of users use whole stars only); each user's timestamps strictly increase, in sessions a few
seconds to minutes apart with breaks of days. Optional bots rate 150-400 random movies one or two
seconds apart, so a rule such as "more than 20 ratings within 60 seconds" separates them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal, overload

import numpy as np
import pandas as pd

GENRES = ("ballad", "dance", "hiphop", "indie", "rnb", "rock")
MALFORMED_KINDS = (
    "missing_songs",
    "null_songs",
    "empty_song",
    "non_string_song",
    "long_song",
    "no_separator",
)
MOVIELENS_GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
NO_GENRES = "(no genres listed)"
PlaylistFormat = Literal["json", "jsonl"]

_GENRE_WEIGHTS = (0.2, 0.22, 0.16, 0.16, 0.12, 0.14)
_SUCCESSOR_WEIGHTS = (0.4, 0.3, 0.2, 0.1)
_FEATURED_SHARE = 0.12

# Syllables with a romanisation, so an invented hangul name has a matching Latin alias.
_SYLLABLES = (
    ("하", "HA"), ("린", "RIN"), ("솔", "SOL"), ("윤", "YUN"), ("서", "SEO"), ("아", "A"),
    ("온", "ON"), ("별", "BYEOL"), ("해", "HAE"), ("다", "DA"), ("예", "YE"), ("은", "EUN"),
    ("도", "DO"), ("현", "HYEON"), ("나", "NA"), ("라", "RA"), ("루", "RU"), ("미", "MI"),
    ("엘", "EL"), ("시", "SI"), ("오", "O"), ("채", "CHAE"), ("겸", "GYEOM"), ("율", "YUL"),
    ("담", "DAM"), ("빈", "BIN"), ("리", "RI"), ("노", "NO"), ("제", "JE"), ("소", "SO"),
    ("휘", "HWI"), ("란", "RAN"), ("여", "YEO"), ("울", "UL"), ("초", "CHO"), ("결", "GYEOL"),
    ("유", "YU"), ("단", "DAN"), ("새", "SAE"), ("무", "MU"),
)  # fmt: skip
_KO_NOUNS = (
    "사랑", "밤", "바다", "별빛", "기억", "봄날", "여름", "겨울", "새벽", "하늘", "꿈", "시간",
    "편지", "거리", "노래", "그림자", "달빛", "바람", "향기", "약속", "첫눈", "온도", "파도",
    "숨결", "창문", "정원", "소나기", "계절", "우주", "골목", "불빛", "오후", "안개", "구름",
    "노을", "별", "비", "마음",
)  # fmt: skip
_EN_ADJECTIVES = (
    "Golden", "Silver", "Midnight", "Velvet", "Neon", "Paper", "Electric", "Quiet", "Broken",
    "Lonely", "Endless", "Hidden", "Crystal", "Burning", "Fading", "Wild", "Gentle", "Restless",
    "Hollow", "Violet", "Amber", "Northern", "Little", "Lucky", "Secret", "Slow", "Bright", "Cold",
    "Sweet", "Blue", "Distant", "Sleepless", "Tender", "Static", "Copper", "Lunar", "Careless",
    "Silent", "Open", "Summer",
)  # fmt: skip
_EN_NOUNS = (
    "Rain", "Moon", "Heart", "River", "Garden", "Signal", "Mirror", "Highway", "Ocean", "Letter",
    "Window", "Flame", "Shadow", "Echo", "Dream", "Avenue", "Harbor", "Skyline", "Satellite",
    "Lantern", "Orchard", "Feather", "Compass", "Parade", "Island", "Season", "Meadow", "Voltage",
    "Horizon", "Engine", "Postcard", "Comet", "Tide", "Canyon", "Balcony", "Circus", "Arcade",
    "Glass", "Winter", "Bloom",
)  # fmt: skip
_DECORATIONS_AFTER = (
    " (Official Video)", " [MV]", " (Lyrics)", " (Audio)", " [4K]", " 【MV】", " (Official Audio)",
    " (Official Music Video)", " (Lyric Video)", " [가사]", " (Visualizer)", " [Official MV]",
)  # fmt: skip
_DECORATIONS_BEFORE = ("[MV] ", "【MV】", "[4K] ")
_EMOJI_BEFORE = ("🎵 ", "🎶 ", "🎧 ", "🔥 ", "✨ ", "💜 ", "🌙 ")
_EMOJI_AFTER = (" 🔥", " ✨", " 💕", " 🎶", " 🌧️", "❤️")
_SEPARATORS = (" - ", " – ", " — ", " | ", " － ", "－", "  -  ", " -", "- ", "-  ")
_SEPARATOR_WEIGHTS = (0.56, 0.1, 0.07, 0.08, 0.05, 0.03, 0.04, 0.03, 0.02, 0.02)
_FEAT_ARTIST_SIDE = ((" feat. ", ""), (" ft. ", ""), (" Feat. ", ""), (" featuring ", ""),
                     (" (feat. ", ")"))  # fmt: skip
_FEAT_TITLE_SIDE = ((" (feat. ", ")"), (" (Feat. ", ")"), (" [feat. ", "]"), (" ft. ", ""),
                    (" (ft. ", ")"))  # fmt: skip
_TIMESTAMP_STYLES = (("", " "), ("[", "] "), ("(", ") "), ("", " - "))
_TRACK_STYLES = (("", ". "), ("", ". "), ("", ") "), ("#", " "))  # the second pads to 2 digits
_ARTIST_FORM_WEIGHTS = (0.4, 0.14, 0.12, 0.08, 0.06, 0.08, 0.08, 0.04)
_TITLE_FORM_WEIGHTS = (0.7, 0.12, 0.08, 0.1)
_PLAYLIST_MOODS = (
    ("새벽 감성", "late night"), ("비 오는 날", "rainy day"), ("드라이브할 때", "driving"),
    ("공부할 때", "studying"), ("잠 안 올 때", "sleepless nights"), ("여름밤", "summer night"),
    ("출근길", "morning commute"), ("카페에서", "coffee shop"),
)  # fmt: skip
_GENRE_LABELS = (
    ("발라드", "ballad"), ("댄스", "dance"), ("힙합", "hip-hop"), ("인디", "indie"),
    ("알앤비", "R&B"), ("락", "rock"),
)  # fmt: skip
_VIDEO_ID_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)


@dataclass(frozen=True)
class PlaylistTruth:
    """What the generator knows and a parser must recover.

    ``song_ids[r]`` is aligned with ``records[r]["songs"]`` (empty when the record has no song
    list); -1 marks a malformed song. ``malformed`` maps record index to its kind. ``songs`` is the
    catalogue: song_id, artist, artist_alias ("" when none), title, featuring ("" when none),
    genre, mood, popularity.
    """

    song_ids: list[np.ndarray]
    malformed: dict[int, str]
    songs: pd.DataFrame


@dataclass(frozen=True)
class RatingsTruth:
    """The latent side of generated ratings: which users are bots, and the factors used."""

    bot_user_ids: np.ndarray
    user_factors: np.ndarray
    movie_factors: np.ndarray


@dataclass(frozen=True)
class _SongWorld:
    artist_names: list[str]
    artist_aliases: list[str]
    song_artist: np.ndarray
    song_titles: list[str]
    song_featured: np.ndarray
    song_genre: np.ndarray
    song_mood: np.ndarray
    song_popularity: np.ndarray
    song_seconds: np.ndarray
    successors: np.ndarray


def _pick(values: Sequence[str], draw: int) -> str:
    return values[int(draw) % len(values)]


def _pick_other(values: Sequence[str], draw: int, taken: int) -> str:
    """A value other than ``_pick(values, taken)``, so titles never read "Harbor of Harbor"."""
    return values[(int(taken) + 1 + int(draw) % (len(values) - 1)) % len(values)]


def _has_final_consonant(word: str) -> bool:
    code = ord(word[-1]) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def _korean_title(draws: np.ndarray) -> str:
    first, second = _pick(_KO_NOUNS, draws[1]), _pick_other(_KO_NOUNS, draws[2], draws[1])
    closed = _has_final_consonant(first)
    patterns = (
        first,
        f"{first} {second}",
        f"{first}의 {second}",
        f"너의 {first}",
        f"{first}{'과' if closed else '와'} {second}",
        f"{first}{'이' if closed else '가'} 오면",
        f"{first}{'을' if closed else '를'} 걷다",
        f"다시, {first}",
        f"{first} 속으로",
        f"안녕, {first}",
    )
    return _pick(patterns, draws[0])


def _english_title(draws: np.ndarray) -> str:
    adjective = _pick(_EN_ADJECTIVES, draws[1])
    noun, other = _pick(_EN_NOUNS, draws[2]), _pick_other(_EN_NOUNS, draws[3], draws[2])
    patterns = (
        f"{adjective} {noun}",
        f"{noun} of {other}",
        f"The {noun}",
        f"My {adjective} {noun}",
        f"{noun} in the {other}",
        f"Before the {noun}",
        f"{adjective} {noun}",
        f"{adjective}",
    )
    return _pick(patterns, draws[0])


def _plural(noun: str) -> str:
    if noun.endswith(("o", "ch", "s")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _syllable_name(draws: np.ndarray, n_syllables: int) -> tuple[str, str]:
    syllables = [_SYLLABLES[int(d) % len(_SYLLABLES)] for d in draws[:n_syllables]]
    return "".join(s[0] for s in syllables), "".join(s[1] for s in syllables)


def _make_artists(
    n_artists: int, rng: np.random.Generator
) -> tuple[list[str], list[str], np.ndarray]:
    """Unique invented artist names, their aliases ("" when none) and whether each is Korean."""
    kinds = rng.choice(4, size=n_artists, p=[0.35, 0.2, 0.2, 0.25])
    has_alias = rng.random(n_artists) < 0.65
    names: list[str] = []
    aliases: list[str] = []
    used: set[str] = set()
    for artist in range(n_artists):
        kind = int(kinds[artist])
        for attempt in range(30):
            draws = rng.integers(0, 1 << 30, size=5)
            if attempt >= 20:
                kind = 1  # the syllable space is far larger than the English one
            if kind == 0:
                name, alias = _syllable_name(draws, 3)
            elif kind == 1:
                alias, name = _syllable_name(draws, 2 + int(draws[4]) % 2)
            elif kind == 2:
                noun = _plural(_pick(_EN_NOUNS, draws[1]))
                alias = f"{_pick(_EN_ADJECTIVES, draws[0])} {noun}"
                name = f"The {alias}"
            else:
                first = _pick(_EN_ADJECTIVES, draws[0])
                second = _pick(_EN_NOUNS, draws[1])
                name, alias = (f"{first} {second}", "") if draws[2] % 3 else (second + " Club", "")
            if name not in used and alias not in used:
                break
        used.update({name, alias} - {""})
        names.append(name)
        aliases.append(alias if (kind == 2 or has_alias[artist]) else "")
        kinds[artist] = kind
    return names, aliases, kinds <= 1


def _build_song_world(n_songs: int, rng: np.random.Generator) -> _SongWorld:
    n_artists = max(2, round(n_songs / 4))
    names, aliases, korean = _make_artists(n_artists, rng)
    artist_weight = (np.arange(n_artists) + 1.0) ** -0.6
    song_artist = np.concatenate(
        [
            np.arange(min(n_artists, n_songs)),
            rng.choice(
                n_artists, size=max(0, n_songs - n_artists), p=artist_weight / artist_weight.sum()
            ),
        ]
    )
    rng.shuffle(song_artist)
    artist_genre = rng.choice(len(GENRES), size=n_artists, p=_GENRE_WEIGHTS)
    korean_title = np.where(
        korean[song_artist], rng.random(n_songs) < 0.65, rng.random(n_songs) < 0.1
    )
    draws = rng.integers(0, 1 << 30, size=(n_songs, 4))
    titles = [
        _korean_title(row) if is_korean else _english_title(row)
        for row, is_korean in zip(draws, korean_title, strict=True)
    ]
    seen: dict[tuple[int, str], int] = {}
    for song, (artist, title) in enumerate(zip(song_artist.tolist(), titles, strict=True)):
        count = seen.get((artist, title), 0) + 1
        seen[(artist, title)] = count
        if count > 1:
            titles[song] = f"{title} Pt. {count}"
    featured = rng.integers(0, n_artists, size=n_songs)
    featured = np.where(
        (rng.random(n_songs) < _FEATURED_SHARE) & (featured != song_artist), featured, -1
    )
    song_genre = artist_genre[song_artist]
    mood = rng.random(n_songs)
    popularity = (rng.permutation(n_songs) + 1.0) ** -1.0
    seconds = rng.integers(140, 300, size=n_songs)
    successors = np.empty((n_songs, len(_SUCCESSOR_WEIGHTS)), dtype=np.int64)
    for genre in range(len(GENRES)):
        members = np.flatnonzero(song_genre == genre)
        path = members[np.argsort(mood[members], kind="stable")]
        for step in range(len(_SUCCESSOR_WEIGHTS)):
            successors[path, step] = np.roll(path, -(step + 1))
    return _SongWorld(
        names,
        aliases,
        song_artist,
        titles,
        featured,
        song_genre,
        mood,
        popularity,
        seconds,
        successors,
    )


def _walk_playlists(
    world: _SongWorld,
    lengths: np.ndarray,
    mixtures: np.ndarray,
    order_strength: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Song ids of every playlist entry, concatenated; one vectorised step at a time."""
    by_genre = np.argsort(world.song_genre, kind="stable")
    cumulative = np.cumsum(world.song_popularity[by_genre])
    genre_sizes = np.bincount(world.song_genre, minlength=len(GENRES))
    genre_end = np.cumsum(genre_sizes)
    genre_low = np.concatenate([[0.0], cumulative])[genre_end - genre_sizes]
    genre_high = np.concatenate([[0.0], cumulative])[genre_end]
    mixture_cumulative = np.cumsum(mixtures, axis=1)
    # Exactly 1.0 at the end, so an empty genre (zero weight) can never be drawn.
    mixture_cumulative /= mixture_cumulative[:, -1:]
    # A step along the path favours near and popular successors, so the long tail survives.
    successor_weights = np.asarray(_SUCCESSOR_WEIGHTS) * world.song_popularity[world.successors]
    successor_cumulative = np.cumsum(successor_weights, axis=1)
    successor_cumulative /= successor_cumulative[:, -1:]

    def jump(playlists: np.ndarray) -> np.ndarray:
        genre = (rng.random(playlists.size)[:, None] > mixture_cumulative[playlists]).sum(axis=1)
        genre = np.minimum(genre, len(GENRES) - 1)
        target = genre_low[genre] + rng.random(playlists.size) * (
            genre_high[genre] - genre_low[genre]
        )
        position = np.searchsorted(cumulative, target, side="right")
        return by_genre[
            np.clip(position, genre_end[genre] - genre_sizes[genre], genre_end[genre] - 1)
        ]

    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    songs = np.empty(int(lengths.sum()), dtype=np.int64)
    current = np.zeros(len(lengths), dtype=np.int64)
    for step in range(int(lengths.max(initial=0))):
        active = np.flatnonzero(lengths > step)
        if step == 0:
            chosen = jump(active)
        else:
            chosen = np.empty(active.size, dtype=np.int64)
            follow = rng.random(active.size) < order_strength
            followers = current[active[follow]]
            draw = rng.random(followers.size)[:, None]
            rank = (draw > successor_cumulative[followers]).sum(axis=1)
            chosen[follow] = world.successors[followers, rank]
            chosen[~follow] = jump(active[~follow])
            # Tracklists rarely repeat a song: redraw repeats a few times, keep the rare rest.
            for _ in range(3):
                earlier = songs[offsets[active][:, None] + np.arange(step)]
                repeated = np.flatnonzero((earlier == chosen[:, None]).any(axis=1))
                if not repeated.size:
                    break
                chosen[repeated] = jump(active[repeated])
        current[active] = chosen
        songs[offsets[active] + step] = chosen
    return songs


def _artist_forms(names: list[str], aliases: list[str]) -> np.ndarray:
    """Per artist: canonical, "name (alias)", alias, lower, upper, spaced, capitalised alias,
    "name(alias)"."""
    rows = []
    for name, alias in zip(names, aliases, strict=True):
        shown_alias = alias or name
        # A band's alias is its name without "The": written alone, never in brackets.
        bracketed = bool(alias) and name != f"The {alias}"
        rows.append(
            (
                name,
                f"{name} ({alias})" if bracketed else name,
                shown_alias,
                name.lower(),
                name.upper(),
                name.replace(" ", "  "),
                shown_alias.title() if shown_alias.isupper() else shown_alias,
                f"{name}({alias})" if bracketed else name,
            )
        )
    return np.array(rows, dtype=object)


def _title_forms(titles: list[str]) -> np.ndarray:
    return np.array([(t, t.lower(), t.upper(), t.replace(" ", "  ")) for t in titles], dtype=object)


def _optional(
    choices: Sequence[str], share: float, size: int, rng: np.random.Generator
) -> np.ndarray:
    """An object array of "" or, with probability ``share``, one of ``choices``."""
    table = np.array(["", *choices], dtype=object)
    index = np.where(rng.random(size) < share, rng.integers(1, len(table), size=size), 0)
    return table[index]


def _join_columns(*columns: np.ndarray) -> np.ndarray:
    """Concatenate string columns element-wise into one object array."""
    joined = np.empty(len(columns[0]), dtype=object)
    joined[:] = list(map("".join, zip(*columns, strict=True)))
    return joined


def _prefixes(
    world: _SongWorld, songs: np.ndarray, lengths: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Timestamp or track-number prefixes; each playlist keeps one style throughout."""
    total = songs.size
    playlist = np.repeat(np.arange(lengths.size), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    style = rng.choice(3, size=lengths.size, p=[0.5, 0.35, 0.15])[playlist]
    clock_style = rng.integers(0, len(_TIMESTAMP_STYLES), size=lengths.size)[playlist]
    track_style = rng.integers(0, len(_TRACK_STYLES), size=lengths.size)[playlist]
    began = np.cumsum(world.song_seconds[songs]) - world.song_seconds[songs]
    began = began - began[starts][playlist] if total else began
    two_digits = np.array([f"{i:02d}" for i in range(100)], dtype=object)
    prefix = np.full(total, "", dtype=object)

    timed = np.flatnonzero(style == 1)
    seconds = began[timed]
    hours = np.array(["", *(f"{h}:" for h in range(1, 100))], dtype=object)
    minutes = np.where(seconds >= 3600, seconds % 3600 // 60, np.minimum(seconds // 60, 99))
    prefix[timed] = _join_columns(
        np.array([s[0] for s in _TIMESTAMP_STYLES], dtype=object)[clock_style[timed]],
        hours[np.minimum(seconds // 3600, 99)],
        two_digits[minutes],
        np.full(timed.size, ":", dtype=object),
        two_digits[seconds % 60],
        np.array([s[1] for s in _TIMESTAMP_STYLES], dtype=object)[clock_style[timed]],
    )
    numbered = np.flatnonzero(style == 2)
    number = np.minimum(numbered - starts[playlist[numbered]] + 1, 999)
    plain = np.array([str(i) for i in range(1000)], dtype=object)
    padded = track_style[numbered] == 1
    prefix[numbered] = _join_columns(
        np.array([s[0] for s in _TRACK_STYLES], dtype=object)[track_style[numbered]],
        np.where(padded, two_digits[np.minimum(number, 99)], plain[number]),
        np.array([s[1] for s in _TRACK_STYLES], dtype=object)[track_style[numbered]],
    )
    return prefix


def _render_songs(
    world: _SongWorld, songs: np.ndarray, lengths: np.ndarray, rng: np.random.Generator
) -> list[str]:
    """The written form of every entry: vectorised choices per part, one join per entry."""
    total = songs.size
    prefix = _prefixes(world, songs, lengths, rng)
    artist_forms = _artist_forms(world.artist_names, world.artist_aliases)
    artist_form = rng.choice(len(_ARTIST_FORM_WEIGHTS), size=total, p=_ARTIST_FORM_WEIGHTS)
    artist_part = artist_forms[world.song_artist[songs], artist_form]
    title_form = rng.choice(len(_TITLE_FORM_WEIGHTS), size=total, p=_TITLE_FORM_WEIGHTS)
    title_part = _title_forms(world.song_titles)[songs, title_form]

    featured = world.song_featured[songs]
    placement = np.where(featured >= 0, rng.choice(3, size=total, p=[0.25, 0.35, 0.4]), 0)
    featured_name = artist_forms[np.maximum(featured, 0), rng.choice([0, 2], size=total)]
    marker = rng.integers(0, len(_FEAT_ARTIST_SIDE), size=total)
    for side, markers, part in (
        (1, _FEAT_ARTIST_SIDE, artist_part),
        (2, _FEAT_TITLE_SIDE, title_part),
    ):
        here = np.flatnonzero(placement == side)
        part[here] = _join_columns(
            part[here],
            np.array([m[0] for m in markers], dtype=object)[marker[here]],
            featured_name[here],
            np.array([m[1] for m in markers], dtype=object)[marker[here]],
        )
    separators = np.array(_SEPARATORS, dtype=object)
    separator = separators[rng.choice(len(_SEPARATORS), size=total, p=_SEPARATOR_WEIGHTS)]
    return _join_columns(
        prefix,
        _optional((" ", "  "), 0.03, total, rng),
        _optional(_EMOJI_BEFORE, 0.04, total, rng),
        _optional(_DECORATIONS_BEFORE, 0.03, total, rng),
        artist_part,
        separator,
        title_part,
        _optional(_DECORATIONS_AFTER, 0.22, total, rng),
        _optional(_EMOJI_AFTER, 0.04, total, rng),
        _optional((" ", "  "), 0.04, total, rng),
    ).tolist()


def _playlist_titles(mixtures: np.ndarray, rng: np.random.Generator) -> list[str]:
    dominant = mixtures.argmax(axis=1)
    mood = rng.integers(0, len(_PLAYLIST_MOODS), size=len(mixtures))
    template = rng.integers(0, 6, size=len(mixtures))
    titles = []
    for genre, mood_index, kind in zip(
        dominant.tolist(), mood.tolist(), template.tolist(), strict=True
    ):
        mood_ko, mood_en = _PLAYLIST_MOODS[mood_index]
        genre_ko, genre_en = _GENRE_LABELS[genre]
        titles.append(
            (
                f"[Playlist] {mood_ko} {genre_ko} 모음",
                f"{mood_ko} 듣기 좋은 {genre_ko} 플레이리스트 🎧",
                f"𝐏𝐥𝐚𝐲𝐥𝐢𝐬𝐭 | {mood_ko}, {genre_ko}",
                f"{genre_en} songs for {mood_en} | playlist",
                f"[PLAYLIST] {mood_en} {genre_en} mix",
                f"{mood_ko} {genre_ko} ({genre_en} playlist)",
            )[kind]
        )
    return titles


def _video_ids(count: int, rng: np.random.Generator) -> list[str]:
    letters = _VIDEO_ID_ALPHABET[rng.integers(0, len(_VIDEO_ID_ALPHABET), size=(count, 11))]
    return [row.tobytes().decode("ascii") for row in letters]


def _filler_text(length: int, rng: np.random.Generator) -> str:
    words = rng.choice(np.array([*_KO_NOUNS, *_EN_NOUNS], dtype=object), size=length // 3 + 1)
    return " ".join(words.tolist())[:length]


def _inject_malformed(
    records: list[dict],
    truth: list[np.ndarray],
    world: _SongWorld,
    malformed_rate: float,
    rng: np.random.Generator,
) -> dict[int, str]:
    count = min(len(records), round(malformed_rate * len(records)))
    chosen = rng.choice(len(records), size=count, replace=False)
    kinds = np.array(MALFORMED_KINDS)[rng.permutation(count) % len(MALFORMED_KINDS)]
    malformed: dict[int, str] = {}
    for record_index, kind in zip(chosen.tolist(), kinds.tolist(), strict=True):
        record = records[record_index]
        malformed[record_index] = kind
        if kind in ("missing_songs", "null_songs"):
            if kind == "missing_songs":
                del record["songs"]
            else:
                record["songs"] = None
            truth[record_index] = np.empty(0, dtype=np.int64)
            continue
        position = int(rng.integers(0, len(record["songs"])))
        song = int(truth[record_index][position])
        replacement: object = {
            "empty_song": "",
            "non_string_song": int(rng.integers(1, 100_000)),
            "long_song": record["songs"][position]
            + " "
            + _filler_text(int(rng.integers(1_000, 3_000)), rng),
            "no_separator": world.song_titles[song],
        }[kind]
        record["songs"][position] = replacement
        truth[record_index][position] = -1
    return malformed


@overload
def generate_playlists(
    n_playlists: int,
    n_songs: int,
    seed: int,
    malformed_rate: float = ...,
    *,
    order_strength: float = ...,
    mean_length: float = ...,
    with_truth: Literal[False] = ...,
) -> list[dict]: ...
@overload
def generate_playlists(
    n_playlists: int,
    n_songs: int,
    seed: int,
    malformed_rate: float = ...,
    *,
    order_strength: float = ...,
    mean_length: float = ...,
    with_truth: Literal[True],
) -> tuple[list[dict], PlaylistTruth]: ...
def generate_playlists(
    n_playlists: int,
    n_songs: int,
    seed: int,
    malformed_rate: float = 0.01,
    *,
    order_strength: float = 0.6,
    mean_length: float = 20.0,
    with_truth: bool = False,
) -> list[dict] | tuple[list[dict], PlaylistTruth]:
    """Playlist records ``{"video_id", "title", "songs"}`` (see the module docstring).

    ``order_strength`` is the share of steps that follow the mood path (0 = order carries no
    signal beyond taste). With ``with_truth`` the canonical song id of every entry comes back too.
    """
    if n_playlists < 0 or n_songs < 1:
        raise ValueError("n_playlists must be >= 0 and n_songs >= 1")
    if not 0.0 <= malformed_rate <= 1.0 or not 0.0 <= order_strength <= 1.0:
        raise ValueError("malformed_rate and order_strength must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    world = _build_song_world(n_songs, rng)
    sigma = 0.55
    lengths = np.exp(rng.normal(np.log(mean_length) - sigma**2 / 2, sigma, size=n_playlists))
    lengths = np.clip(np.round(lengths), 2, 200).astype(np.int64)
    present = np.bincount(world.song_genre, minlength=len(GENRES)) > 0
    mixtures = rng.dirichlet(np.full(len(GENRES), 0.3), size=n_playlists) * present
    mixtures /= mixtures.sum(axis=1, keepdims=True)
    songs = _walk_playlists(world, lengths, mixtures, order_strength, rng)
    written = _render_songs(world, songs, lengths, rng)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    records = [
        {"video_id": video_id, "title": title, "songs": written[bounds[i] : bounds[i + 1]]}
        for i, (video_id, title) in enumerate(
            zip(_video_ids(n_playlists, rng), _playlist_titles(mixtures, rng), strict=True)
        )
    ]
    song_ids = [songs[bounds[i] : bounds[i + 1]].copy() for i in range(n_playlists)]
    malformed = _inject_malformed(records, song_ids, world, malformed_rate, rng)
    if not with_truth:
        return records
    catalogue = pd.DataFrame(
        {
            "song_id": np.arange(n_songs),
            "artist": [world.artist_names[a] for a in world.song_artist],
            "artist_alias": [world.artist_aliases[a] for a in world.song_artist],
            "title": world.song_titles,
            "featuring": [world.artist_names[f] if f >= 0 else "" for f in world.song_featured],
            "genre": np.array(GENRES)[world.song_genre],
            "mood": world.song_mood,
            "popularity": world.song_popularity / world.song_popularity.sum(),
        }
    )
    return records, PlaylistTruth(song_ids, malformed, catalogue)


def write_playlists(
    records: list[dict], path: str | Path, format: PlaylistFormat | None = None
) -> Path:
    """Write records as a JSON array (one record per line) or as JSON Lines, UTF-8.

    The format follows ``format`` or else the file suffix (``.jsonl`` means JSON Lines).
    """
    target = Path(path)
    chosen = format or ("jsonl" if target.suffix == ".jsonl" else "json")
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    text = "\n".join(lines) + "\n" if chosen == "jsonl" else "[\n" + ",\n".join(lines) + "\n]\n"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text if records or chosen == "json" else "", encoding="utf-8")
    return target


def _movie_titles(n_movies: int, rng: np.random.Generator) -> list[str]:
    draws = rng.integers(0, 1 << 30, size=(n_movies, 5))
    years = np.clip(2018 - np.floor(rng.exponential(14.0, size=n_movies)), 1925, 2018).astype(int)
    titles = []
    for row, year in zip(draws, years.tolist(), strict=True):
        adjective, noun = _pick(_EN_ADJECTIVES, row[1]), _pick(_EN_NOUNS, row[2])
        other = _pick_other(_EN_NOUNS, row[3], row[2])
        name = (
            f"The {adjective} {noun}",
            f"{noun} of {other}",
            f"{adjective} {noun}",
            f"Return to the {noun}",
            f"{noun} Rising",
            f"A {adjective} {noun}",
            f"The {noun} and the {other}",
            f"{adjective} {noun} 2",
        )[int(row[0]) % 8]
        if name.startswith("The ") and row[4] % 2:
            name = f"{name[4:]}, The"  # MovieLens moves a leading article to the end
        titles.append(f"{name} ({year})")
    return titles


def _movie_genres(n_movies: int, rng: np.random.Generator) -> list[list[int]]:
    weights = np.array(
        [6, 4, 1.5, 2, 10, 3.5, 1.2, 12, 2.5, 0.3, 3, 0.5, 1, 1.8, 4.5, 2.5, 5, 1.2, 0.5]
    )
    counts = rng.choice([1, 2, 3, 4], size=n_movies, p=[0.35, 0.35, 0.2, 0.1])
    keys = np.log(weights)[None, :] + rng.gumbel(size=(n_movies, len(MOVIELENS_GENRES)))
    order = np.argsort(-keys, axis=1)
    return [sorted(order[m, : counts[m]].tolist()) for m in range(n_movies)]


def _session_timestamps(count: int, rng: np.random.Generator) -> np.ndarray:
    start = rng.integers(946_684_800, 1_483_228_800)  # 2000-01-01 .. 2017-01-01, UTC
    breaks = rng.random(count) < 0.08
    gaps = np.where(
        breaks, rng.exponential(20 * 86_400.0, size=count), 5 + rng.exponential(50.0, size=count)
    )
    gaps[0] = 0
    return start + np.cumsum(np.maximum(gaps.astype(np.int64), 1)) - 1


@overload
def generate_ratings(
    n_users: int,
    n_items: int,
    seed: int,
    *,
    n_bots: int = ...,
    ratings_per_user: float = ...,
    n_factors: int = ...,
    with_truth: Literal[False] = ...,
) -> tuple[pd.DataFrame, pd.DataFrame]: ...
@overload
def generate_ratings(
    n_users: int,
    n_items: int,
    seed: int,
    *,
    n_bots: int = ...,
    ratings_per_user: float = ...,
    n_factors: int = ...,
    with_truth: Literal[True],
) -> tuple[pd.DataFrame, pd.DataFrame, RatingsTruth]: ...
def generate_ratings(
    n_users: int,
    n_items: int,
    seed: int,
    *,
    n_bots: int = 0,
    ratings_per_user: float = 60.0,
    n_factors: int = 8,
    with_truth: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame] | tuple[pd.DataFrame, pd.DataFrame, RatingsTruth]:
    """``(ratings, movies)`` in MovieLens latest-small columns (see the module docstring).

    ``n_users`` counts everyone, ``n_bots`` of them bots. Ratings are sorted by userId then movieId
    like the real file. With ``with_truth`` a ``RatingsTruth`` comes back as a third value.
    """
    if n_users < 1 or n_items < 1 or not 0 <= n_bots <= n_users:
        raise ValueError("need n_users >= 1, n_items >= 1 and 0 <= n_bots <= n_users")
    rng = np.random.default_rng(seed)
    movie_ids = np.cumsum(rng.integers(1, 6, size=n_items))
    movie_ids -= movie_ids[0] - 1
    genres = _movie_genres(n_items, rng)
    unlabelled = rng.random(n_items) < 0.01
    genre_vectors = rng.normal(size=(len(MOVIELENS_GENRES), n_factors))
    movie_factors = np.stack([genre_vectors[g].mean(axis=0) for g in genres])
    movie_factors = 0.8 * movie_factors + 0.6 * rng.normal(size=(n_items, n_factors))
    user_factors = rng.normal(size=(n_users, n_factors))
    popularity = (rng.permutation(n_items) + 1.0) ** -1.0
    log_popularity = np.log(popularity)
    movie_bias = 0.35 * rng.normal(size=n_items) + 0.1 * (log_popularity - log_popularity.mean())
    user_bias = 0.35 * rng.normal(size=n_users)
    whole_stars = rng.random(n_users) < 0.25
    lower = min(20, n_items)
    counts = np.exp(rng.normal(np.log(ratings_per_user) - 0.45, 0.9, size=n_users))
    counts = np.clip(np.round(counts), lower, max(lower, n_items // 2)).astype(np.int64)
    bots = np.sort(rng.choice(n_users, size=n_bots, replace=False))
    is_bot = np.zeros(n_users, dtype=bool)
    is_bot[bots] = True

    frames = []
    for begin in range(0, n_users, 256):
        users = np.arange(begin, min(begin + 256, n_users))
        affinity = user_factors[users] @ movie_factors.T / np.sqrt(n_factors)
        keys = log_popularity[None, :] + 2.0 * affinity + rng.gumbel(size=affinity.shape)
        order = np.argsort(-keys, axis=1)
        noise = rng.normal(0.0, 0.6, size=affinity.shape)
        for row, user in enumerate(users.tolist()):
            if is_bot[user]:
                continue
            chosen = order[row, : counts[user]]
            chosen = chosen[rng.permutation(chosen.size)]  # time order carries no taste rank
            liking = affinity[row, chosen]
            # Centred per user, so the catalogue size does not shift the average rating.
            raw = 3.45 + user_bias[user] + movie_bias[chosen] + 0.9 * (liking - liking.mean())
            raw = raw + noise[row, chosen]
            rating = (
                np.clip(np.round(raw), 1.0, 5.0)
                if whole_stars[user]
                else np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
            )
            frames.append((user, chosen, rating, _session_timestamps(chosen.size, rng)))
    for user in bots.tolist():
        count = min(n_items, int(rng.integers(150, 401)))
        chosen = rng.choice(n_items, size=count, replace=False)
        rating = np.full(count, 5.0) if user % 2 else rng.integers(1, 11, size=count) / 2
        start = rng.integers(1_262_304_000, 1_514_764_800)  # 2010 .. 2018
        frames.append((user, chosen, rating, start + np.cumsum(rng.integers(1, 3, size=count))))

    ratings = pd.DataFrame(
        {
            "userId": np.concatenate([np.full(f[1].size, f[0] + 1) for f in frames]),
            "movieId": np.concatenate([movie_ids[f[1]] for f in frames]),
            "rating": np.concatenate([f[2] for f in frames]).astype(np.float64),
            "timestamp": np.concatenate([f[3] for f in frames]).astype(np.int64),
        }
    )
    ratings = ratings.sort_values(["userId", "movieId"], kind="stable").reset_index(drop=True)
    movies = pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": _movie_titles(n_items, rng),
            "genres": [
                NO_GENRES if bare else "|".join(MOVIELENS_GENRES[g] for g in labels)
                for labels, bare in zip(genres, unlabelled.tolist(), strict=True)
            ],
        }
    )
    if not with_truth:
        return ratings, movies
    return ratings, movies, RatingsTruth(bots + 1, user_factors, movie_factors)


def write_ratings(
    ratings: pd.DataFrame, movies: pd.DataFrame, directory: str | Path
) -> tuple[Path, Path]:
    """Write ``ratings.csv`` and ``movies.csv`` the way MovieLens ships them."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    ratings_path, movies_path = root / "ratings.csv", root / "movies.csv"
    ratings.to_csv(ratings_path, index=False, lineterminator="\n")
    movies.to_csv(movies_path, index=False, lineterminator="\n")
    return ratings_path, movies_path


def write_demo_ratings(directory: str | Path) -> Path:
    """The demo's ratings (300 users with 3 bots, 600 movies, seed 42), written to ``directory``.

    Generated rather than shipped: the same seed gives the same bytes every time, and the
    repository holds no files laid out like the MovieLens dataset.
    """
    write_ratings(*generate_ratings(300, 600, seed=42, n_bots=3), directory)
    return Path(directory)


def sample_path(name: str) -> Path:
    """Where a bundled demo file lives, e.g. ``"playlists.json"``."""
    path = Path(str(resources.files("segue.sample"))) / name
    if not path.exists():
        raise FileNotFoundError(f"no bundled sample named {name!r} at {path}")
    return path
