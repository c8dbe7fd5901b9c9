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
"""

from __future__ import annotations

import gc
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import pandas as pd

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


# ---------------------------------------------------------------- character-level cleaning

# Hyphens and minus signs read as "-"; typographic dashes never occur inside a name, so they
# always separate, with or without spaces (full-width "－" is written unspaced in CJK text).
_HYPHENS = "\u2010\u2011\u2012\u2212\ufe63"
_SEPARATING_DASHES = "\u2013\u2014\u2015\u2e3a\u2e3b\ufe31\ufe32\ufe58\uff0d"
_TRANSLATION: dict[int, str | None] = {
    **{ord(c): "-" for c in _HYPHENS},
    **{ord(c): " - " for c in _SEPARATING_DASHES},
    **{ord(c): "|" for c in "\uff5c\u2502\u2503\u00a6"},
    **{ord(c): "'" for c in "\u2018\u2019\u201a\u201b\u2032"},
    **{ord(c): '"' for c in "\u201c\u201d\u201e\u2033"},
    **{ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"},
    **{code: " " for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]},
}
_REPLACEMENTS = {chr(code): text or "" for code, text in _TRANSLATION.items()}
_TRANSLATED = re.escape("".join(map(chr, _TRANSLATION)))
_EMOJI_RANGES = (
    "\U0001f000-\U0001faff\U0001fc00-\U0001ffff\u2190-\u21ff\u2300-\u23ff"
    "\u25a0-\u25ff\u2600-\u27bf\u2b00-\u2bff\ufe00-\ufe0f\U000e0000-\U000e007f"
)
_NEEDS_TRANSLATION = re.compile(f"[{_TRANSLATED}]")
_EMOJI = re.compile(f"[{_EMOJI_RANGES}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Everything the slow path must see: characters to translate or drop, lone surrogates, and the
# compatibility forms (small and full-width dashes) that NFKC turns into characters to translate.
_UNUSUAL = re.compile(f"[{_TRANSLATED}{_EMOJI_RANGES}\ud800-\udfff\ufe30-\ufe6f\uff0d\uff5c]")

# Bracket groups, one level of nesting allowed inside () and [].
_GROUP = re.compile(
    r"\((?:[^()]|\([^()]*\))*\)|\[(?:[^\[\]]|\[[^\[\]]*\])*\]|\{[^{}]*\}"
    r"|【[^【】]*】|〔[^〔〕]*〕|〖[^〖〗]*〗"
)
_BRACKET_CHARS = re.compile(r"[()\[\]{}【】〔〕〖〗]")
_RARE_BRACKETS = re.compile(r"[{}【】〔〕〖〗]")
_GROUP_OR_STRAY = re.compile(f"({_GROUP.pattern})|{_BRACKET_CHARS.pattern}")
_OPENING_SPACING = re.compile(r"\s*([(\[{【〔〖])\s*")
_CLOSING_SPACING = re.compile(r"\s*([)\]}】〕〗])")

_TIME = r"[\[(]?\d{1,2}(?::\d{2}){1,2}[\])]?"
_LEADING_POSITION = re.compile(
    rf"\s*(?:{_TIME}(?:\s*[-~]\s*{_TIME})?|#\s?\d{{1,4}}\b|\d{{1,3}}[.)](?!\d))"
    r"(?:\s*[-|:.~)]+(?=\s))?\s*"
)
_TRAILING_TIME = re.compile(rf"(?: *[-|])? *{_TIME} *$")
_POSITION_START = frozenset("0123456789#[(")
_EDGE_JUNK = " -|_/:~·•*>,"

_QUOTED_TITLE = re.compile(
    r"(?P<artist>.*?[^\s'\"])(?:\s+'(?P<single>[^']{2,})'(?=$|[\s(\[【])"
    r"|\s*(?:\"(?P<double>[^\"]+)\"|「(?P<corner>[^」]+)」|『(?P<white>[^』]+)』"
    r"|《(?P<angle>[^》]+)》|〈(?P<small>[^〉]+)〉|【(?P<lens>[^】]+)】))(?P<rest>.*)",
    re.DOTALL,
)
_QUOTE_OPENINGS = re.compile("['\"「『《〈【]")
_TITLE_SEGMENTS = re.compile(r" +-+ +| *\|+ *| +_+ +| +/ +")
_QUOTE_PAIRS = {"'": "'", '"': '"', "「": "」", "『": "』", "《": "》", "〈": "〉"}

# ---------------------------------------------------------------- featuring and decorations

_FEAT_WORDS = r"(?:feat\b\.?|ft\b\.?|featuring\b)"
_ARTIST_FEAT = re.compile(rf"(?<= )(?:{_FEAT_WORDS}|with\b|w/) *", re.IGNORECASE)
_TITLE_FEAT = re.compile(rf"(?<= ){_FEAT_WORDS} *", re.IGNORECASE)
_GROUP_FEAT = re.compile(rf"(?:{_FEAT_WORDS}|with\b|w/)\s*", re.IGNORECASE)
_NAME_LIST = re.compile(r"\s*(?:,|、|&|\+|\s(?:and|x|×)\s)\s*", re.IGNORECASE)
_ALIAS_LIST = re.compile(r"\s*[,/、]\s*")
_ARTIST_CONNECTOR = re.compile(r" *(?:&|\+|\band\b) *", re.IGNORECASE)

_MUSIC_VIDEO = re.compile(r"\bm\s*/\s*v\b|\bm\s+v\b")
_TOKEN = re.compile(r"[^\W_]+")
_MEDIA_TOKEN = re.compile(r"\d+(?:k|p|fps|hz)|\d{3,4}x\d{3,4}")
_DECORATION_START = re.compile(
    r"(?:live\b|remaster|from\s|prod\b|produced\s+by|directed\s+by|lyrics?\s+by|"
    r"taken\s+from|as\s+heard|가사|자막|한글\s*자막|歌詞|歌词|字幕)"
)
# Words that make a bracket a decoration, and words allowed beside them ("Official HD Video").
# fmt: off
_DECORATION_WORDS = frozenset([
    "official", "video", "audio", "mv", "lyrics", "lyric", "lyricvideo", "visualizer",
    "visualiser", "hd", "hq", "uhd", "live", "teaser", "trailer", "clip", "remastered",
    "remaster", "remasterd", "explicit", "clean", "subtitles", "subtitle", "sub", "subs", "cc",
    "performance", "practice", "fancam", "album", "mp3", "flac", "soundtrack", "ost",
    "직캠", "가사", "가사첨부", "자막", "한글자막", "뮤직비디오", "뮤비", "공식", "라이브",
    "무대", "음원", "고음질", "풀버전", "교차편집",
    "歌詞", "公式", "字幕", "官方", "歌词", "动态歌词", "中字", "中文字幕", "高音質", "完整版",
])
_DECORATION_FILLER = frozenset([
    "version", "ver", "the", "a", "an", "and", "only", "with", "in", "on", "new", "original",
    "full", "music", "special", "color", "colour", "coded", "han", "rom", "eng", "kor", "jpn",
    "chn", "english", "korean", "japanese", "chinese", "romanized", "romanised", "translation",
    "translated", "hangul", "dance", "stage", "track", "bonus", "by",
    "한글", "영상", "뮤직", "비디오", "버전",
])
# fmt: on
_VERSION_WORDS = re.compile(
    r"remix|\bmix\b|\bedit\b|acoustic|\binst\b|instrumental|\bver\b|version|cover|"
    r"sped\s*up|slowed|nightcore|\bdemo\b|unplugged|orchestra|piano|a\s*cappella|acapella|"
    r"mashup|rework|extended|reprise|\bpart\b|\bpt\b|remake|\bvip\b|"
    r"버전|리믹스|어쿠스틱|편곡|커버|리메이크"
)
_TAIL_ENDINGS = ("mv", "m/v", "video", "lyrics", "가사", "4k", "hd", "audio")
_TAIL_DECORATION = re.compile(
    r"(?:\s+(?:official\s+(?:music\s+video|lyric\s+video|video|audio|mv|m/v)|"
    r"music\s+video|lyric\s+video|m/v|mv|lyrics|가사|4k|hd))+\s*$",
    re.IGNORECASE,
)

_DECORATION, _FEATURING, _VERSION, _OTHER = "decoration", "featuring", "version", "other"


@lru_cache(maxsize=16384)
def _classify(content: str) -> tuple[str, str]:
    """What a bracket's content (or a trailing title segment) is: (kind, useful text)."""
    text = " ".join(content.split())
    folded = _MUSIC_VIDEO.sub("mv", text.casefold())
    tokens = _TOKEN.findall(folded)
    if not tokens or _DECORATION_START.match(folded):
        return _DECORATION, ""
    if any(t in _DECORATION_WORDS or _MEDIA_TOKEN.fullmatch(t) for t in tokens) and all(
        t in _DECORATION_WORDS
        or t in _DECORATION_FILLER
        or t.isdigit()
        or _MEDIA_TOKEN.fullmatch(t)
        for t in tokens
    ):
        return _DECORATION, ""
    feat = _GROUP_FEAT.match(text)
    if feat:
        names = text[feat.end() :].strip()
        return (_FEATURING, names) if names else (_DECORATION, "")
    if _VERSION_WORDS.search(folded):
        return _VERSION, text
    return _OTHER, text


def _drop_decoration(match: re.Match[str]) -> str:
    return " " if _classify(match[0][1:-1])[0] is _DECORATION else match[0]


def _keep_matched_bracket(match: re.Match[str]) -> str:
    return match[1] or " "


def _clean_characters(text: str) -> str:
    """NFKC, one dash and one bar character, straight quotes; no emoji or control characters."""
    # A regex substitution, not str.translate: translate pays a failed dict lookup per character.
    if text.isascii():
        return text if text.isprintable() else _NEEDS_TRANSLATION.sub(_translate, text)
    if not _UNUSUAL.search(text):
        return unicodedata.normalize("NFKC", text)
    # Translate before NFKC too: NFKC would turn "－" into a plain, unspaced "-".
    text = unicodedata.normalize("NFKC", _NEEDS_TRANSLATION.sub(_translate, text))
    return _EMOJI.sub(" ", _NEEDS_TRANSLATION.sub(_translate, text))


def _translate(match: re.Match[str]) -> str:
    return _REPLACEMENTS[match[0]]


def _drop_decorations(text: str) -> str:
    """Remove bracketed decorations and brackets left unmatched (``Title (feat. X``)."""
    if _BRACKET_CHARS.search(text):
        text = _GROUP.sub(_drop_decoration, text)
        if (
            text.count("(") != text.count(")")
            or text.count("[") != text.count("]")
            or _RARE_BRACKETS.search(text)
        ) and _BRACKET_CHARS.search(_GROUP.sub(" ", text)):
            text = _GROUP_OR_STRAY.sub(_keep_matched_bracket, text)
    return text


def _has_brackets(text: str) -> bool:
    return "(" in text or "[" in text or "{" in text or "【" in text or "〔" in text or "〖" in text


def _prepare(text: str) -> str:
    """Clean characters and drop decorations of a text that has no positions (a field)."""
    return _drop_decorations(_clean_characters(text))


def _tidy(text: str) -> str:
    """Display form: single spaces, ``Name (Alias)`` spacing, no separator debris at the edges."""
    if _has_brackets(text):
        text = _CLOSING_SPACING.sub(r"\1", _OPENING_SPACING.sub(r" \1", text))
    return " ".join(text.split()).strip(_EDGE_JUNK)


def _unquote(text: str) -> str:
    if len(text) > 2 and _QUOTE_PAIRS.get(text[0]) == text[-1]:
        return text[1:-1].strip()
    return text


# ---------------------------------------------------------------- key normalisation

_NOT_WORD = re.compile(r"[\W_]+")
_LATIN_WITH_MARKS = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")
_COMBINING_MARKS = re.compile("[\u0300-\u036f]")


def normalize_name(text: str) -> str:
    """The key form of a name or title: case-folded, ``&`` as "and", only letters and digits."""
    return _key_from_folded(text.casefold())


def normalize_artist(text: str) -> str:
    """The key form of an artist name: :func:`normalize_name` without a leading "The"."""
    folded = text.casefold().strip()
    if folded.startswith("the ") and folded[4:].strip():
        folded = folded[4:]
    return _key_from_folded(folded)


def _key_from_folded(folded: str) -> str:
    folded = "".join(folded.split())
    if "&" in folded or "+" in folded:
        folded = folded.replace("&", "and").replace("+", "and")
    if not folded.isascii() and _LATIN_WITH_MARKS.search(folded):
        decomposed = _COMBINING_MARKS.sub("", unicodedata.normalize("NFD", folded))
        folded = unicodedata.normalize("NFC", decomposed)
    return folded if folded.isalnum() else _NOT_WORD.sub("", folded)


# ---------------------------------------------------------------- artist and title sides


class _ArtistParts(NamedTuple):
    display: str
    name: str  # key form of the whole name without aliases
    components: tuple[str, ...]  # key forms of the names joined by "&" / "and" / "+"
    pairs: tuple[tuple[str, str], ...]  # (name, alias) in key form, for AliasTable
    featuring: tuple[str, ...]


class _TitleParts(NamedTuple):
    display: str
    key: str
    featuring: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]  # aliases written in featured names


_NO_ARTIST = _ArtistParts("", "", (), (), ())


def _featured_names(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    names: list[str] = []
    pairs: list[tuple[str, str]] = []
    for piece in _NAME_LIST.split(text):
        parts = _artist_parts(piece)
        if parts.display:
            names.append(parts.display)
        names.extend(parts.featuring)
        pairs.extend(parts.pairs)
    return names, pairs


@lru_cache(maxsize=65536)
def _artist_parts(text: str) -> _ArtistParts:
    """Display name, key forms, alias pairs and featured artists of one artist side."""
    featuring: list[str] = []
    pairs: list[tuple[str, str]] = []
    folded = text.casefold()
    feat = (
        _ARTIST_FEAT.search(text)
        if "ft" in folded or "feat" in folded or "with" in folded or "w/" in folded
        else None
    )
    if feat:
        featuring, pairs = _featured_names(text[feat.end() :])
        text = text[: feat.start()]
    plain = text
    if _has_brackets(text):
        display_pieces: list[str] = []
        plain_pieces: list[str] = []
        owner = ""
        last = 0
        for group in _GROUP.finditer(text):
            before = text[last : group.start()]
            last = group.end()
            display_pieces.append(before)
            plain_pieces.append(before)
            if before.strip():
                owner = _NAME_LIST.split(before)[-1]
            kind, value = _classify(group[0][1:-1])
            if kind is _FEATURING:
                names, name_pairs = _featured_names(value)
                featuring.extend(names)
                pairs.extend(name_pairs)
            elif kind is not _DECORATION:
                display_pieces.append(group[0])
                owner_key = normalize_artist(owner)
                pairs.extend(
                    (owner_key, normalize_artist(alias)) for alias in _ALIAS_LIST.split(value)
                )
        display_pieces.append(text[last:])
        plain_pieces.append(text[last:])
        text = " ".join(display_pieces)
        plain = " ".join(plain_pieces)
        if not plain.strip(_EDGE_JUNK + " ") and pairs:
            plain = text  # the whole name was bracketed: "(IU)"
    display = _tidy(_unquote(_tidy(text)))
    name = normalize_artist(plain)
    components: tuple[str, ...] = (name,)
    if "&" in plain or "+" in plain or " and " in plain.casefold():
        parts = tuple(c for c in map(normalize_artist, _ARTIST_CONNECTOR.split(plain)) if c)
        components = parts or components
    return _ArtistParts(display, name, components, tuple(pairs), tuple(featuring))


def _without_tail_decoration(text: str) -> str:
    """``밤편지 MV`` -> ``밤편지``; checks the last word first because the regex is slow."""
    if not text[-6:].casefold().endswith(_TAIL_ENDINGS):
        return text
    return _tidy(_TAIL_DECORATION.sub("", text))


@lru_cache(maxsize=65536)
def _title_parts(text: str) -> _TitleParts:
    """Display title, key form (with version markers) and featured artists of one title side."""
    featured: list[str] = []
    markers: list[str] = []
    alternatives: list[str] = []
    extra_display: list[str] = []
    folded = text.casefold()
    if not (
        "-" in text
        or "|" in text
        or "_" in text
        or " / " in text
        or "ft" in folded
        or "feat" in folded
        or _has_brackets(text)
    ):
        # The common case, kept short: a plain title, perhaps with a trailing "MV" or quotes.
        display = " ".join(text.split())
        if folded[-6:].endswith(_TAIL_ENDINGS):
            display = _without_tail_decoration(display)
            folded = display.casefold()
        if display[:1] in _QUOTE_PAIRS:
            display = _unquote(display)
        return _TitleParts(display, _key_from_folded(folded), (), ())
    main = text
    if "-" in text or "|" in text or "_" in text or " / " in text:
        segments = _TITLE_SEGMENTS.split(text)
        main = segments[0]
        for segment in segments[1:]:
            segment = segment.strip(_EDGE_JUNK)
            kind, value = _classify(segment) if segment else (_DECORATION, "")
            if kind is _FEATURING:
                featured.append(value)
            elif kind is _VERSION:
                markers.append(value)
                extra_display.append(segment)
            elif kind is _OTHER:
                if main.strip(_EDGE_JUNK):
                    extra_display.append(segment)
                else:
                    main = segment
    folded = main.casefold()
    if "ft" in folded or "feat" in folded:
        feat = _TITLE_FEAT.search(main)
        if feat:
            opening = _BRACKET_CHARS.search(main, feat.end())
            end = opening.start() if opening else len(main)
            featured.append(main[feat.end() : end])
            main = main[: feat.start()] + " " + main[end:]
    if _has_brackets(main):
        display_pieces: list[str] = []
        plain_pieces: list[str] = []
        last = 0
        for group in _GROUP.finditer(main):
            display_pieces.append(main[last : group.start()])
            plain_pieces.append(main[last : group.start()])
            last = group.end()
            kind, value = _classify(group[0][1:-1])
            if kind is _FEATURING:
                featured.append(value)
            elif kind is not _DECORATION:
                display_pieces.append(group[0])
                (markers if kind is _VERSION else alternatives).append(value)
        display_pieces.append(main[last:])
        plain_pieces.append(main[last:])
        display = _unquote(_without_tail_decoration(_tidy(" ".join(display_pieces))))
        plain = _without_tail_decoration(" ".join(plain_pieces).strip())
    else:
        display = plain = _unquote(_without_tail_decoration(_tidy(main)))
    title_key = normalize_name(plain)
    if not title_key and alternatives:
        title_key = normalize_name(alternatives[0])
    if title_key and markers:
        title_key += normalize_name(" ".join(markers))
    if extra_display:
        display = " - ".join([display, *extra_display]) if display else " - ".join(extra_display)
    if not featured:
        return _TitleParts(display, title_key, (), ())
    names: list[str] = []
    pairs: list[tuple[str, str]] = []
    for value in featured:
        value_names, value_pairs = _featured_names(value)
        names.extend(value_names)
        pairs.extend(value_pairs)
    return _TitleParts(display, title_key, tuple(names), tuple(pairs))


# ---------------------------------------------------------------- whole strings


class _SongParts(NamedTuple):
    artist: _ArtistParts
    title: _TitleParts
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
    text = _drop_decorations(_strip_positions(_clean_characters(raw)))
    artist_side, title_side = _split_sides(text)
    artist_side = artist_side.strip(_EDGE_JUNK)
    artist = _artist_parts(artist_side) if artist_side else _NO_ARTIST
    title = _title_parts(title_side.strip(_EDGE_JUNK))
    if not title.key:
        return "no title"
    return _SongParts(artist, title, artist.featuring + title.featuring, artist.pairs + title.pairs)


# ---------------------------------------------------------------- aliases


_SCRIPTS = (
    ("hangul", re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")),
    ("kana", re.compile("[\u3040-\u30ff]")),
    ("han", re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("latin", re.compile("[a-z]")),
)


@lru_cache(maxsize=16384)
def _scripts(name: str) -> frozenset[str]:
    return frozenset(label for label, pattern in _SCRIPTS if pattern.search(name))


class AliasTable:
    """Names that denote one artist, learned from written forms such as ``아이유 (IU)``.

    A name in brackets beside another is an alias only when the two are written in different
    scripts (a translation or transliteration: ``JANNABI(잔나비)``), because same-script brackets
    are usually something else (``Jimin (BTS)``). Conflicts are settled so that a member never
    takes over a group:

    * an alias written beside two different names (``지민 (BTS)``, ``뷔 (BTS)``) is ignored;
    * when a name with aliases of its own is itself written as someone's alias (``지민 (BTS)``
      and ``BTS (방탄소년단)``), the more often seen side wins and a tie drops both;
    * an alias tied to an artist by a loaded table cannot be claimed by another name.

    Every decision is taken over all observations at once, so the result does not depend on
    input order. Names are kept in key form (:func:`normalize_name`); each group's canonical name
    is its alphabetically first member, preferring names that were canonical in a loaded table
    so that saved keys stay valid.
    """

    def __init__(self) -> None:
        # alias -> {name it was written beside: number of observations}
        self._claims: dict[str, dict[str, int]] = {}
        self._saved: dict[str, str] = {}  # alias -> artist, from a loaded table
        self._resolved: dict[str, str] | None = None

    def learn(self, artist_form: str) -> None:
        """Record the aliases in one written artist form (``"아이유 (IU)"``; plain names add none)."""
        self.add_pairs(_artist_parts(_prepare(artist_form)).pairs)

    def add_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (name, alias) observations given in key form."""
        for name, alias in pairs:
            if not name or not alias or name == alias or alias.isdigit() or name.isdigit():
                continue
            if _scripts(name) == _scripts(alias):
                continue
            claimants = self._claims.setdefault(alias, {})
            claimants[name] = claimants.get(name, 0) + 1
            self._resolved = None

    def canonical(self, name: str) -> str:
        """The canonical key form of an artist name (the name itself when it has no aliases)."""
        key = normalize_artist(name)
        return self._mapping().get(key, key)

    def copy(self) -> AliasTable:
        table = AliasTable()
        table._claims = {alias: dict(names) for alias, names in self._claims.items()}
        table._saved = dict(self._saved)
        return table

    def __len__(self) -> int:
        """The number of aliases (names that map to a different canonical name)."""
        return sum(1 for alias, artist in self._mapping().items() if alias != artist)

    def to_frame(self) -> pd.DataFrame:
        """Columns ``alias`` and ``artist`` (both key forms), one row per non-canonical name."""
        import pandas as pd

        rows = sorted(
            (alias, artist) for alias, artist in self._mapping().items() if alias != artist
        )
        return pd.DataFrame(rows, columns=["alias", "artist"], dtype=object).astype(str)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> AliasTable:
        """Load a table saved by :meth:`to_frame` (e.g. a dataset's ``aliases.parquet``)."""
        missing = {"alias", "artist"} - set(frame.columns)
        if missing:
            raise ValueError(f"alias table lacks columns {sorted(missing)}")
        table = cls()
        for alias, artist in zip(frame["alias"], frame["artist"], strict=True):
            alias_key, artist_key = normalize_name(str(alias)), normalize_name(str(artist))
            if alias_key and artist_key and alias_key != artist_key:
                table._saved[alias_key] = artist_key
        return table

    def _mapping(self) -> dict[str, str]:
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _accepted_claims(self) -> list[tuple[str, str]]:
        """The (name, alias) observations that survive the conflict rules in the class docstring."""
        own: dict[str, dict[str, int]] = {}  # name -> {its alias: observations}
        for alias, claimants in self._claims.items():
            for name, seen in claimants.items():
                own.setdefault(name, {})[alias] = seen
        dropped: set[tuple[str, str]] = set()
        for alias, claimants in self._claims.items():
            if len(claimants) > 1:
                dropped.update((name, alias) for name in claimants)
                continue
            ((name, seen),) = claimants.items()
            rivals = {other: count for other, count in own.get(alias, {}).items() if other != name}
            if rivals:
                strongest = max(rivals.values())
                if seen <= strongest:
                    dropped.add((name, alias))
                if seen >= strongest:
                    dropped.update((alias, other) for other in rivals)
        return [
            (name, alias)
            for alias, claimants in self._claims.items()
            for name in claimants
            if (name, alias) not in dropped
        ]

    def _resolve(self) -> dict[str, str]:
        parent: dict[str, str] = {}

        def find(name: str) -> str:
            root = parent.setdefault(name, name)
            while root != parent[root]:
                root = parent[root]
            while parent[name] != root:
                parent[name], name = root, parent[name]
            return root

        def union(first: str, second: str) -> None:
            parent[find(first)] = find(second)

        for alias, artist in self._saved.items():
            union(alias, artist)
        saved_group = {name: find(name) for name in list(parent)}
        for name, alias in self._accepted_claims():
            if alias in saved_group and saved_group[alias] != saved_group.get(name):
                continue
            union(alias, name)
        groups: dict[str, list[str]] = {}
        for name in parent:
            groups.setdefault(find(name), []).append(name)
        targets = set(self._saved.values())
        mapping: dict[str, str] = {}
        for members in groups.values():
            if len(members) < 2:
                continue
            preferred = [m for m in members if m in targets] or members
            canonical = min(preferred)
            mapping.update(dict.fromkeys(members, canonical))
        return mapping


def _artist_key(
    artist: _ArtistParts, aliases: dict[str, str] | None, pairs: tuple[tuple[str, str], ...]
) -> str:
    """The artist part of a key; without a table, the aliases written alongside are used."""
    if aliases is None:
        if not pairs:
            return artist.name
        table = AliasTable()
        table.add_pairs(pairs)
        aliases = table._mapping()
    whole = aliases.get(artist.name)
    if whole is not None:
        return whole
    if len(artist.components) < 2:
        return artist.name
    canonical = [aliases.get(component) for component in artist.components]
    if all(name is None for name in canonical):
        return artist.name
    return "and".join(
        name or component for name, component in zip(canonical, artist.components, strict=True)
    )


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


def _build(raw: str, parts: _SongParts, aliases: dict[str, str] | None) -> ParsedSong:
    key = f"{_artist_key(parts.artist, aliases, parts.pairs)}{KEY_SEPARATOR}{parts.title.key}"
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
    return _build(raw, parts, aliases._mapping() if aliases is not None else None)


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
        mapping = table._mapping()
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


def song_key(artist: str, title: str, aliases: AliasTable | None = None) -> str:
    """The key of a song given as separate artist and title fields (e.g. Spotify MPD tracks)."""
    if not isinstance(artist, str) or not isinstance(title, str):
        raise SongParseError("not a string", artist if not isinstance(artist, str) else title)
    artist_text = _prepare(artist).strip(_EDGE_JUNK)
    artist_parts = _artist_parts(artist_text) if artist_text else _NO_ARTIST
    title_parts = _title_parts(_prepare(title).strip(_EDGE_JUNK))
    if not title_parts.key:
        raise SongParseError("no title", title)
    pairs = artist_parts.pairs + title_parts.pairs
    mapping = aliases._mapping() if aliases is not None else None
    return f"{_artist_key(artist_parts, mapping, pairs)}{KEY_SEPARATOR}{title_parts.key}"
