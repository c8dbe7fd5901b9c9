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
   labels of the same recording (``Radio Edit``, ``Single Version``, ``Album Version``,
   ``Remastered 2015``, ``2011 Remaster``, ``Original Mix``, ``Explicit``), ``From "Film"``,
   ``Prod. by X``, subtitles, Korean, Japanese and Chinese equivalents (``가사``, ``歌詞``,
   ``官方``).
5. Splits artist from title at the first separator, in this priority: an en dash, em dash or
   full-width ``－`` (spaced or not), or a hyphen with a space on at least one side; then ``|`` or
   ``｜``; then ``_`` with a space on a side; then `` / `` with spaces on both sides. ``~`` is not
   a separator (Japanese titles use ``~subtitle~``), nor are unspaced hyphens and slashes
   (``JAY-Z``, ``AC/DC``).
   Without a separator, a quoted or bracketed title after a name is recognised
   (``아이유 '밤편지'``, ``周杰倫【告白氣球】``); in a corpus, a string that starts with a known
   artist followed by one of that artist's known titles is split there (``IU Palette``);
   otherwise the artist is unknown (``""``) and the whole string is the title.
6. Featured artists (``feat.``, ``ft.``, ``featuring``, and ``with`` in brackets or on the artist
   side) are taken from either side, bracketed or not, and reported in ``featuring``.
7. Other bracketed text. On the artist side it names an alias (``아이유 (IU)``,
   ``JANNABI(잔나비)``) that :class:`AliasTable` learns; ``artist`` is the name without it and
   ``artist_aliases`` holds it. An artist written twice in two scripts without brackets
   (``Red Velvet 레드벨벳``) is read the same way when the corpus or the table knows either name.
   On the title side a version marker naming another recording (``Live``, ``Remix``,
   ``Acoustic Ver.``, ``Inst.``, ``Demo``, ``Taylor's Version``, ``Cover``) is part of the key,
   while anything else is not; a trailing bracket in another script than the title is its
   translation (``밤편지 (Through the Night)``: ``title`` 밤편지, ``title_translation``
   Through the Night). Trailing `` - Remastered`` / `` | Lyrics`` segments are handled the same
   way.
8. A title made only of symbols after an artist is a real song (``Ty Dolla $ign - $``,
   ``Chet Faker - /``, ``Baths - ♥``), keyed by its symbols; pictographs alone (``🎵``) are not.

Key format: ``"<artist>|<title>"``. Each part is NFKC, case-folded, stripped of Latin diacritics,
with ``&`` and ``+`` read as ``and``, and every character that is not a letter or digit removed
(spaces too, so Korean spacing variants agree); the artist part also loses a leading "The"
(``The Beatles`` = ``Beatles``). A list of artists (``,`` ``&`` ``+`` ``and`` ``x`` ``×``) keys
as its distinct names in alphabetical order joined by ``and``, whatever their order and
separators; ``with`` introduces featured artists like ``feat.``: ``"iu|밤편지"``,
``"garfunkelandsimon|theboxer"``, ``"postmaloneandswaelee|sunflower"``.
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
from collections.abc import Callable, Iterable, Iterator, Mapping
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
    keep_symbols,
    normalize_artist,
    read_artist_side,
    read_title_side,
    split_script_runs,
    symbol_key,
)

MAX_LENGTH = 300
KEY_SEPARATOR = "|"


@dataclass(frozen=True)
class ParsedSong:
    """One parsed song string: display forms, featured artists and the canonical key.

    ``artist`` and ``title`` are written as a person would write them: the artist without its
    bracketed aliases (those are ``artist_aliases``), the title without a bracketed translation
    (that is ``title_translation``).
    """

    raw: str
    artist: str
    title: str
    featuring: tuple[str, ...]
    key: str
    artist_aliases: tuple[str, ...] = ()
    title_translation: str = ""


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
    text: str  # the cleaned string the sides were read from


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
    if not title.key and artist_side:
        title = _symbol_title(raw) or title
    if not title.key:
        return "no title"
    return _SongParts(
        artist, title, artist.featuring + title.featuring, artist.pairs + title.pairs, text
    )


def _symbol_title(raw: str) -> TitleSide | None:
    """A title made only of symbols after an artist (``Ty Dolla $ign - $``, ``Chet Faker - /``,
    ``Baths - ♥``): a real song, keyed by its symbols. Pictographs alone (``IU - 🎵``) are not."""
    _, title_side = _split_sides(drop_decorations(_strip_positions(keep_symbols(raw))))
    title = " ".join(title_side.split())
    key = symbol_key(title)
    return TitleSide(title, key, (), ()) if key else None


def _with_script_alias(parts: _SongParts, known: Callable[[str], bool]) -> _SongParts | None:
    """``Red Velvet 레드벨벳 - X`` read as ``Red Velvet (레드벨벳) - X`` when ``known`` accepts
    either name (an artist of the corpus or of the alias table); None when it does not apply."""
    artist = parts.artist
    if artist.pairs or len(artist.components) > 1:
        return None
    runs = split_script_runs(artist.display)
    if runs is None or not any(known(normalize_artist(run)) for run in runs):
        return None
    named = read_artist_side(f"{runs[0]} ({runs[1]})")
    artist = named._replace(featuring=artist.featuring)
    return parts._replace(artist=artist, pairs=named.pairs + parts.pairs)


def _with_known_artist(
    parts: _SongParts, known: Callable[[str], str | None], keys: set[str]
) -> _SongParts | None:
    """A string without a separator that starts with a known artist and whose rest is a title
    that artist is known for (``Red Velvet 빨간 맛``, with ``Red Velvet - 빨간 맛`` in the
    corpus), read as ``artist - title``; None when it does not apply."""
    words = parts.text.split()
    for cut in range(len(words) - 1, 0, -1):
        canonical = known(normalize_artist(" ".join(words[:cut])))
        if canonical is None:
            continue
        rest = " ".join(words[cut:]).strip(EDGE_JUNK)
        title = read_title_side(rest) if rest else None
        if title is not None and f"{canonical}{KEY_SEPARATOR}{title.key}" in keys:
            artist = read_artist_side(" ".join(words[:cut]).strip(EDGE_JUNK))
            return parts._replace(
                artist=artist, title=title, featuring=artist.featuring + title.featuring
            )
    return None


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
    return ParsedSong(
        raw,
        parts.artist.display,
        parts.title.display,
        parts.featuring,
        key,
        parts.artist.aliases,
        parts.title.translation,
    )


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
    mapping = aliases.mapping() if aliases is not None else None
    if mapping:
        parts = _with_script_alias(parts, mapping.__contains__) or parts
    return _build(raw, parts, mapping)


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

    The corpus is also the known-artist table: an artist written twice in two scripts without
    brackets (``Red Velvet 레드벨벳``) is read as a name and its alias when the corpus or the
    table knows either name, and a string without a separator that starts with a known artist
    whose rest is one of that artist's known titles is split there.
    """
    table = aliases.copy() if aliases is not None else AliasTable()
    raws = list(raws)
    analysed: dict[str, _SongParts | str] = {}
    uses: dict[str, int] = {}
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
            uses[raw] = uses.get(raw, 0) + 1
            if learn and not isinstance(parts, str) and parts.pairs:
                table.add_pairs(parts.pairs)  # every occurrence counts as evidence
        _read_with_known_artists(analysed, uses, table, learn)
        mapping = table.mapping()
        built = {
            raw: SongParseError(parts, raw)
            if isinstance(parts, str)
            else _build(raw, parts, mapping)
            for raw, parts in analysed.items()
        }
        _split_with_known_titles(analysed, built, mapping)
        results = [
            built[raw] if isinstance(raw, str) else SongParseError("not a string", raw)
            for raw in raws
        ]
    return results, table


def _read_with_known_artists(
    analysed: dict[str, _SongParts | str], uses: dict[str, int], table: AliasTable, learn: bool
) -> None:
    """Re-read, in place, artists written in two scripts without brackets whose names the
    corpus or the table knows; their aliases are learned as often as the strings occur."""
    known = {parts.artist.name for parts in analysed.values() if not isinstance(parts, str)}
    known.update(table.mapping())
    for raw, parts in analysed.items():
        if isinstance(parts, str) or not parts.artist.display or parts.artist.pairs:
            continue
        rewritten = _with_script_alias(parts, known.__contains__)
        if rewritten is None:
            continue
        analysed[raw] = rewritten
        if learn:
            table.add_pairs(rewritten.artist.pairs * uses.get(raw, 1))


def _split_with_known_titles(
    analysed: dict[str, _SongParts | str],
    built: dict[str, ParsedSong | SongParseError],
    mapping: Mapping[str, str],
) -> None:
    """Key again, in place, strings without a separator that name a known artist's known title."""
    keys = {song.key for song in built.values() if isinstance(song, ParsedSong)}
    artists = {key.split(KEY_SEPARATOR, 1)[0] for key in keys} - {""}

    def known(name: str) -> str | None:
        canonical = mapping.get(name, name)
        return canonical if canonical in artists else None

    for raw, parts in analysed.items():
        if isinstance(parts, str) or parts.artist.display:
            continue
        split = _with_known_artist(parts, known, keys)
        if split is not None:
            analysed[raw] = split
            built[raw] = _build(raw, split, mapping)


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
