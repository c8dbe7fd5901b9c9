"""Free-text song strings from playlist tracklists -> artist, title, featured artists and a key.

Tracklists write one song in many ways (``00:00 아이유 (IU) - 밤편지 [Official MV]``,
``IU – 밤편지 (feat. X)``, ``1. iu | 밤편지``); a recommender needs one item per song, so every
string is reduced to a canonical **song key** that is equal for the same song and differs for
different songs.

What the parser does, in order:

1. Rejects non-strings, strings longer than ``max_length``, lone surrogates and blank strings.
2. NFKC-normalises (full-width ``｜ （）`` become ``| ()``), reads hyphens and minus signs as
   ``-`` and typographic dashes (en, em, full-width ``－``) as a spaced `` - ``, straightens curly
   quotes, and drops emoji, zero-width and control characters.
3. Strips leading positions (``00:00``, ``1:02:03``, ``[03:15]``, ``00:00 - 03:15``, ``1.``,
   ``01)``, ``#3``) and a trailing timestamp.
4. Drops decorations in brackets ``() [] {} 【】 〔〕 〖〗`` anywhere: video and audio labels
   (``Official Video``, ``[MV]``, ``[M/V]``, ``Lyrics``, ``Audio``, ``[4K]``, ``Visualizer``),
   ``Live``, ``Remastered 2015``, ``From "Film"``, ``Prod. by X``, subtitles, Korean, Japanese and
   Chinese equivalents (``가사``, ``歌詞``, ``官方``).
5. Splits artist from title at the first separator, in this priority: an en dash, em dash or
   full-width ``－`` (spaced or not), or a hyphen with a space on at least one side; then ``|`` or
   ``｜``; then ``_`` with a space on a side; then `` / `` with spaces on both sides. ``~`` is not
   a separator (Japanese titles use ``~subtitle~``), nor are unspaced hyphens and slashes
   (``JAY-Z``, ``AC/DC``).
   Without a separator, a quoted or bracketed title after a name is recognised
   (``아이유 '밤편지'``, ``周杰倫【告白氣球】``); otherwise the artist is unknown (``""``) and
   the whole string is the title.
6. Featured artists (``feat.``, ``ft.``, ``featuring``, and ``with`` in brackets or on the artist
   side) are taken from either side, bracketed or not, and reported in ``featuring``.
7. Other bracketed text is kept for display. On the artist side it names an alias
   (``아이유 (IU)``, ``JANNABI(잔나비)``) that :class:`AliasTable` learns. On the title side a
   version marker (``Remix``, ``Acoustic Ver.``, ``Inst.``, ``Taylor's Version``, ``Cover``)
   is part of the key, while anything else (a translation such as ``밤편지 (Through the Night)``)
   is not. Trailing `` - Remastered`` / `` | Lyrics`` segments are handled the same way.

Key format: ``"<artist>|<title>"``. Each part is NFKC, case-folded, stripped of Latin diacritics,
with ``&`` and ``+`` read as ``and``, and every character that is not a letter or digit removed
(spaces too, so Korean spacing variants agree); the artist part also loses a leading "The"
(``The Beatles`` = ``Beatles``): ``"iu|밤편지"``, ``"simonandgarfunkel|theboxer"``.
The artist part is the canonical name from the alias table (the alphabetically first name of the
group, preferring names already canonical in a saved table); ``""`` when the artist is unknown.
Featured artists, decorations and alternative titles are not part of the key; version markers are.

Where each step lives: the text rules (steps 2, 4, 6, 7 and the key forms) in
:mod:`segue.data.song_text`, the alias table and the artist part of a key in
:mod:`segue.data.song_aliases`, whole strings (steps 1, 3, 5 and corpus parsing) here.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from segue.data.song_aliases import AliasTable, artist_key, resolve_artist_key
from segue.data.song_text import (
    EDGE_JUNK,
    NO_ARTIST,
    ArtistSide,
    TitleSide,
    clean_characters,
    drop_decorations,
    read_artist_side,
    read_title_side,
)

MAX_LENGTH = 300
KEY_SEPARATOR = "|"


@dataclass(frozen=True)
class ParsedSong:
    """One parsed song string: display forms, featured artists and the canonical key."""

    raw: str
    artist: str
    title: str
    featuring: tuple[str, ...]
    key: str


class SongParseError(ValueError):
    """A song string that cannot be read; ``reason`` says why in a few words."""

    def __init__(self, reason: str, raw: object = None) -> None:
        shown = raw if isinstance(raw, str) else type(raw).__name__
        if isinstance(shown, str) and len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"cannot parse song {shown!r}: {reason}")
        self.reason = reason
        self.raw = raw


# ---------------------------------------------------------------- whole strings

_SURROGATE = re.compile("[\ud800-\udfff]")
_TIME = r"[\[(]?\d{1,2}(?::\d{2}){1,2}[\])]?"
_LEADING_POSITION = re.compile(
    rf"\s*(?:{_TIME}(?:\s*[-~]\s*{_TIME})?|#\s?\d{{1,4}}\b|\d{{1,3}}[.)](?!\d))"
    r"(?:\s*[-|:.~)]+(?=\s))?\s*"
)
_TRAILING_TIME = re.compile(rf"(?: *[-|])? *{_TIME} *$")
_POSITION_START = frozenset("0123456789#[(")
_QUOTED_TITLE = re.compile(
    r"(?P<artist>.*?[^\s'\"])(?:\s+'(?P<single>[^']{2,})'(?=$|[\s(\[【])"
    r"|\s*(?:\"(?P<double>[^\"]+)\"|「(?P<corner>[^」]+)」|『(?P<white>[^』]+)』"
    r"|《(?P<angle>[^》]+)》|〈(?P<small>[^〉]+)〉|【(?P<lens>[^】]+)】))(?P<rest>.*)",
    re.DOTALL,
)
_QUOTE_OPENINGS = re.compile("['\"「『《〈【]")


class _SongParts(NamedTuple):
    artist: ArtistSide
    title: TitleSide
    featuring: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]  # every alias written in the string


def _strip_positions(text: str) -> str:
    text = text.strip()
    for _ in range(3):
        if not text or text[0] not in _POSITION_START:
            break
        match = _LEADING_POSITION.match(text)
        if not match or not match.end():
            break
        text = text[match.end() :]
    if text and text[-1] in "0123456789)]" and ":" in text[-12:]:
        text = _TRAILING_TIME.sub("", text)
    return text


def _separator_span(text: str, character: str) -> tuple[int, int] | None:
    """Start and end of the first run of ``character`` that counts as a separator, with its spaces.

    ``|`` always counts; ``-`` and ``_`` only with a space on at least one side (``JAY-Z``).
    """
    if character == "|":
        position = text.find(character)
    else:
        after_space, before_space = text.find(" " + character), text.find(character + " ")
        if after_space < 0:
            position = before_space
        elif before_space < 0:
            position = after_space + 1
        else:
            position = min(after_space + 1, before_space)
    if position < 0:
        return None
    start, end, around = position, position, (" ", character)
    while start and text[start - 1] in around:
        start -= 1
    while end < len(text) and text[end] in around:
        end += 1
    return start, end


def _split_sides(text: str) -> tuple[str, str]:
    """(artist side, title side); the artist side is "" when no separator is found."""
    for character in "-|_":
        span = _separator_span(text, character)
        if span:
            return text[: span[0]], text[span[1] :]
    position = text.find(" / ")
    if position >= 0:
        return text[:position], text[position + 3 :]
    quoted = _QUOTED_TITLE.fullmatch(text) if _QUOTE_OPENINGS.search(text) else None
    if quoted:
        title = next(
            value
            for name, value in quoted.groupdict().items()
            if value and name not in ("artist", "rest")
        )
        return quoted["artist"], f"{title} {quoted['rest']}"
    return "", text


@lru_cache(maxsize=65536)
def _analyse(raw: str, max_length: int) -> _SongParts | str:
    """The alias-independent parse of one string, or the reason it cannot be parsed."""
    if len(raw) > max_length:
        return "too long"
    if not raw.strip():
        return "empty"
    if not raw.isascii() and _SURROGATE.search(raw):
        return "lone surrogate"
    text = drop_decorations(_strip_positions(clean_characters(raw)))
    artist_side, title_side = _split_sides(text)
    artist_side = artist_side.strip(EDGE_JUNK)
    artist = read_artist_side(artist_side) if artist_side else NO_ARTIST
    title = read_title_side(title_side.strip(EDGE_JUNK))
    if not title.key:
        return "no title"
    return _SongParts(artist, title, artist.featuring + title.featuring, artist.pairs + title.pairs)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a corpus is parsed.

    Parsing allocates millions of small acyclic tuples that the collector would otherwise rescan
    over and over (about a quarter of the time); the previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(raw: str, parts: _SongParts, aliases: Mapping[str, str] | None) -> ParsedSong:
    artist = resolve_artist_key(parts.artist, aliases, parts.pairs)
    key = f"{artist}{KEY_SEPARATOR}{parts.title.key}"
    return ParsedSong(raw, parts.artist.display, parts.title.display, parts.featuring, key)


# ---------------------------------------------------------------- public API


def parse_song(
    raw: str, aliases: AliasTable | None = None, *, max_length: int = MAX_LENGTH
) -> ParsedSong:
    """Parse one song string; without a table, aliases written in the string itself are used.

    Raises :class:`SongParseError` (reasons: "not a string", "too long", "lone surrogate",
    "empty", "no title").
    """
    if not isinstance(raw, str):
        raise SongParseError("not a string", raw)
    parts = _analyse(raw, max_length)
    if isinstance(parts, str):
        raise SongParseError(parts, raw)
    return _build(raw, parts, aliases.mapping() if aliases is not None else None)


def parse_songs(
    raws: Iterable[str],
    aliases: AliasTable | None = None,
    *,
    learn: bool = True,
    max_length: int = MAX_LENGTH,
) -> tuple[list[ParsedSong | SongParseError], AliasTable]:
    """Parse a corpus: learn artist aliases from all of it first, then key every string with them.

    One result per input, in order (a :class:`SongParseError` where a string cannot be read).
    Each distinct string is parsed once. A given table is copied and extended, never modified;
    with ``learn=False`` it is used as is (keys then agree with the dataset it came from).
    """
    table = aliases.copy() if aliases is not None else AliasTable()
    raws = list(raws)
    analysed: dict[str, _SongParts | str] = {}
    # Tracklists make a song's lines distinct through their timestamps alone ("03:15 IU - X",
    # "07:42 IU - X"), so the parse is shared by everything after the timestamp or number.
    by_core: dict[str, _SongParts | str] = {}
    analyse = _analyse.__wrapped__  # strings are deduplicated here; skip the shared LRU cache
    with _collector_paused():
        for raw in raws:
            if not isinstance(raw, str):
                continue
            parts = analysed.get(raw)
            if parts is None:
                if len(raw) > max_length:
                    parts = "too long"
                else:
                    core = _strip_positions(raw) or raw
                    parts = by_core.get(core)
                    if parts is None:
                        parts = by_core[core] = analyse(core, max_length)
                analysed[raw] = parts
            if learn and not isinstance(parts, str) and parts.pairs:
                table.add_pairs(parts.pairs)  # every occurrence counts as evidence
        mapping = table.mapping()
        built = {
            raw: SongParseError(parts, raw)
            if isinstance(parts, str)
            else _build(raw, parts, mapping)
            for raw, parts in analysed.items()
        }
        results = [
            built[raw] if isinstance(raw, str) else SongParseError("not a string", raw)
            for raw in raws
        ]
    return results, table


def item_artist_ids(
    keys: Iterable[str], artists: Iterable[str], aliases: AliasTable | None = None
) -> list[str]:
    """Who each catalogue item is by, as ranking compares artists: the artist part of its song key
    when the key has one (``"iu|밤편지"`` -> ``"iu"``), else its display artist read by
    :func:`~segue.data.song_aliases.artist_key` ("" when there is none, as for movies)."""
    return [
        key.split(KEY_SEPARATOR, 1)[0]
        if KEY_SEPARATOR in key
        else (artist_key(artist, aliases) if artist else "")
        for key, artist in zip(keys, artists, strict=True)
    ]
