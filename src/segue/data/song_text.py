"""The text rules of song strings: character cleaning, what brackets hold, and key forms.

Everything here works on a piece of text, never on a whole song string (that is
:mod:`segue.data.song_parser`):

* **Characters.** NFKC (full-width ``｜ （）`` become ``| ()``), hyphens and minus signs read as
  ``-``, typographic dashes (en, em, full-width ``－``) as a spaced `` - ``, curly quotes
  straightened; emoji, zero-width and control characters dropped.
* **Brackets** ``() [] {} 【】 〔〕 〖〗``: their content is a decoration (video and audio labels
  such as ``Official Video``, ``[MV]``, ``Lyrics``, ``[4K]``, ``Live``, ``Remastered 2015``,
  ``From "Film"``, ``Prod. by X``, Korean, Japanese and Chinese equivalents such as ``가사``,
  ``歌詞``, ``官方``), featured artists (``feat.``, ``ft.``, ``featuring``, ``with``), a version
  marker (``Remix``, ``Acoustic Ver.``, ``Inst.``, ``Taylor's Version``, ``Cover``) or other
  text (an alias or a translation). Decorations are dropped.
* **Versions.** A bracket naming another recording (``Live``, ``Remix``, ``Acoustic``,
  ``Inst.``, ``Demo``) is a version marker and stays in the key; one naming the same recording
  (``Radio Edit``, ``Single Version``, ``Album Version``, ``2011 Remaster``, ``Remastered 2009``,
  ``Explicit``) is a decoration.
* **Sides.** An artist side gives a display name without its bracketed aliases, those aliases
  (``아이유 (IU)``, ``JANNABI(잔나비)``), its key form, the names of a list (joined by ``,``
  ``&`` ``+`` ``and`` ``x``; ``with`` introduces featured artists) and featured artists. A title
  side gives a display title, a trailing bracketed translation in another script
  (``밤편지 (Through the Night)``) apart, a key form that keeps version markers but not
  translations, and featured artists. Trailing `` - Remastered`` / `` | Lyrics`` segments are
  read like brackets.
* **Key forms.** NFKC, case-folded, Latin diacritics stripped, ``&`` and ``+`` read as ``and``,
  every character that is not a letter or digit removed (spaces too, so Korean spacing variants
  agree); an artist also loses a leading "The" (``The Beatles`` = ``Beatles``). A list of artists
  keys as its names in alphabetical order joined by ``and`` (:func:`artist_list_key`), so
  ``Post Malone, Swae Lee`` = ``Swae Lee & Post Malone``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

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
_PICTOGRAPHS = re.compile(
    "[\U0001f000-\U0001faff\U0001fc00-\U0001ffff\ufe00-\ufe0f\U000e0000-\U000e007f]+"
)
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

# Separator debris trimmed from both ends of an artist or title side.
EDGE_JUNK = " -|_/:~·•*>,"
_TITLE_SEGMENTS = re.compile(r" +-+ +| *\|+ *| +_+ +| +/ +")
_QUOTE_PAIRS = {"'": "'", '"': '"', "「": "」", "『": "』", "《": "》", "〈": "〉"}
_AFTER_TITLE = EDGE_JUNK + "'\"」』》〉 "  # what may follow a trailing translation

# ---------------------------------------------------------------- featuring and decorations

_FEAT_WORDS = r"(?:feat\b\.?|ft\b\.?|featuring\b)"
_ARTIST_FEAT = re.compile(rf"(?<= )(?:{_FEAT_WORDS}|with\b|w/) *", re.IGNORECASE)
_TITLE_FEAT = re.compile(rf"(?<= ){_FEAT_WORDS} *", re.IGNORECASE)
_GROUP_FEAT = re.compile(rf"(?:{_FEAT_WORDS}|with\b|w/)\s*", re.IGNORECASE)
_NAME_LIST = re.compile(r"\s*(?:,|、|&|\+|\s(?:and|x|×)\s)\s*", re.IGNORECASE)
_ALIAS_LIST = re.compile(r"\s*[,/、]\s*")
# The separators of an artist list. A comma before "The" belongs to a name ("Tyler, The
# Creator"); "x" separates only between two names ("Lil Nas X & Billy Ray Cyrus" has no "x" list).
_ARTIST_LIST = re.compile(
    r"\s*(?:,(?!\s*the\b)|、|&|\+|\band\b|(?<=\s)[x×](?=\s+[^\s&,+、]))\s*", re.IGNORECASE
)
_LIST_HINT = re.compile(r"[,、&+×]|\band\b|\sx\s", re.IGNORECASE)

_MUSIC_VIDEO = re.compile(r"\bm\s*/\s*v\b|\bm\s+v\b")
_TOKEN = re.compile(r"[^\W_]+")
_MEDIA_TOKEN = re.compile(r"\d+(?:k|p|fps|hz)|\d{3,4}x\d{3,4}")
_DECORATION_START = re.compile(
    r"(?:remaster|from\s|prod\b|produced\s+by|directed\s+by|lyrics?\s+by|"
    r"taken\s+from|as\s+heard|가사|자막|한글\s*자막|歌詞|歌词|字幕)"
)
# Words that make a bracket a decoration, and words allowed beside them ("Official HD Video").
# fmt: off
_DECORATION_WORDS = frozenset([
    "official", "video", "audio", "mv", "lyrics", "lyric", "lyricvideo", "visualizer",
    "visualiser", "hd", "hq", "uhd", "teaser", "trailer", "clip", "remastered",
    "remaster", "remasterd", "explicit", "clean", "subtitles", "subtitle", "sub", "subs", "cc",
    "performance", "practice", "fancam", "album", "mp3", "flac", "soundtrack", "ost",
    "직캠", "가사", "가사첨부", "자막", "한글자막", "뮤직비디오", "뮤비", "공식",
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
    r"mashup|rework|extended|reprise|\bpart\b|\bpt\b|remake|\bvip\b|\blive\b|"
    r"버전|리믹스|어쿠스틱|편곡|커버|리메이크|라이브"
)
# A bracket made only of these words (and years) names the same recording: "Radio Edit",
# "Single Version", "2011 Remaster", "Original Mix", "Explicit". At least one qualifier is needed,
# so "(Mix)" or "(Version)" alone stays a version marker.
_SAME_RECORDING_QUALIFIERS = frozenset([
    "radio", "single", "album", "lp", "explicit", "clean", "censored", "uncensored", "dirty",
    "original", "main", "edit", "remaster", "remastered", "remasterd", "mono", "stereo",
])  # fmt: skip
_SAME_RECORDING_WORDS = _SAME_RECORDING_QUALIFIERS | {
    "version",
    "ver",
    "mix",
    "digital",
    "digitally",
}
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
    words = [token for token in tokens if not token.isdigit()]
    if (
        words
        and all(token in _SAME_RECORDING_WORDS for token in words)
        and any(token in _SAME_RECORDING_QUALIFIERS for token in words)
    ):
        return _DECORATION, ""
    if _VERSION_WORDS.search(folded):
        return _VERSION, text
    return _OTHER, text


def _drop_decoration(match: re.Match[str]) -> str:
    return " " if _classify(match[0][1:-1])[0] is _DECORATION else match[0]


def _keep_matched_bracket(match: re.Match[str]) -> str:
    return match[1] or " "


def keep_symbols(text: str) -> str:
    """:func:`clean_characters` that keeps text symbols (``♥``, ``★``) and drops only pictographs
    (``🎵``): for reading a title made only of symbols."""
    text = unicodedata.normalize("NFKC", _NEEDS_TRANSLATION.sub(_translate, text))
    return _PICTOGRAPHS.sub(" ", _NEEDS_TRANSLATION.sub(_translate, text))


def clean_characters(text: str) -> str:
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


def drop_decorations(text: str) -> str:
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


def clean_field(text: str) -> str:
    """Clean characters and drop decorations of a text that has no positions (a field)."""
    return drop_decorations(clean_characters(text))


def _tidy(text: str) -> str:
    """Display form: single spaces, ``Name (Alias)`` spacing, no separator debris at the edges."""
    if _has_brackets(text):
        text = _CLOSING_SPACING.sub(r"\1", _OPENING_SPACING.sub(r" \1", text))
    return " ".join(text.split()).strip(EDGE_JUNK)


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


def artist_list_key(names: Iterable[str]) -> str:
    """The key form of a list of artists (key forms): the distinct names in alphabetical order
    joined by ``and``, so the order they are written in and the separator do not matter."""
    return "and".join(sorted({name for name in names if name}))


_SCRIPTS = (
    ("hangul", re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")),
    ("kana", re.compile("[\u3040-\u30ff]")),
    ("han", re.compile("[\u4e00-\u9fff\u3400-\u4dbf]")),
    ("latin", re.compile("[a-z]")),
)


@lru_cache(maxsize=16384)
def scripts_of(text: str) -> frozenset[str]:
    """The scripts (hangul, kana, han, latin) a case-folded text is written in."""
    return frozenset(label for label, pattern in _SCRIPTS if pattern.search(text))


def other_script(text: str, other: str) -> bool:
    """True when two texts are written in different, non-overlapping scripts: a translation or
    transliteration of one another (``밤편지`` and ``Through the Night``)."""
    first, second = scripts_of(text.casefold()), scripts_of(other.casefold())
    return bool(first) and bool(second) and not first & second


def split_script_runs(name: str) -> tuple[str, str] | None:
    """``Red Velvet 레드벨벳`` -> ``("Red Velvet", "레드벨벳")``: a name written twice, in two
    scripts, without brackets; None for anything else (one script, three runs, a one-letter
    run, a word mixing scripts or holding no letter)."""
    words = name.split()
    if len(words) < 2:
        return None
    scripts = [scripts_of(word.casefold()) for word in words]
    if any(len(found) != 1 for found in scripts):
        return None
    cuts = [i for i in range(1, len(words)) if scripts[i] != scripts[i - 1]]
    if len(cuts) != 1:
        return None
    first, second = " ".join(words[: cuts[0]]), " ".join(words[cuts[0] :])
    if len(normalize_artist(first)) < 2 or len(normalize_artist(second)) < 2:
        return None
    return first, second


def symbol_key(title: str) -> str:
    """The key form of a title made only of symbols (``$``, ``/``, ``♥``): the symbols, without
    spaces or the key separator; "" when the title holds a letter or digit."""
    if any(character.isalnum() for character in title):
        return ""
    return "".join(title.split()).replace("|", "")


# ---------------------------------------------------------------- artist and title sides


class ArtistSide(NamedTuple):
    """One artist side as read: display name, key forms, written aliases, featured artists."""

    display: str  # the name as written, without its bracketed aliases
    name: str  # key form of the whole name without aliases
    components: tuple[str, ...]  # key forms of the names of a list ("A, B", "A & B", "A x B")
    pairs: tuple[tuple[str, str], ...]  # (name, alias) in key form, for AliasTable
    featuring: tuple[str, ...]
    aliases: tuple[str, ...] = ()  # the bracketed aliases as written: ("IU",) for "아이유 (IU)"


class TitleSide(NamedTuple):
    """One title side as read: display title, key form (version markers kept), featured artists."""

    display: str  # the title as written, without a bracketed translation
    key: str
    featuring: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]  # aliases written in featured names
    translation: str = ""  # a trailing bracketed title in another script: "Through the Night"


# The artist side of a string without a separator: the artist is unknown.
NO_ARTIST = ArtistSide("", "", (), (), ())


def _featured_names(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    names: list[str] = []
    pairs: list[tuple[str, str]] = []
    for piece in _NAME_LIST.split(text):
        parts = read_artist_side(piece)
        if parts.display:
            # A featured name keeps its aliases as written: "슈가 (SUGA)".
            written = f"{parts.display} ({', '.join(parts.aliases)})" if parts.aliases else ""
            names.append(written or parts.display)
        names.extend(parts.featuring)
        pairs.extend(parts.pairs)
    return names, pairs


@lru_cache(maxsize=65536)
def read_artist_side(text: str) -> ArtistSide:
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
    aliases: list[str] = []
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
                written = [alias.strip() for alias in _ALIAS_LIST.split(value) if alias.strip()]
                aliases.extend(written)
                pairs.extend((owner_key, normalize_artist(alias)) for alias in written)
        display_pieces.append(text[last:])
        plain_pieces.append(text[last:])
        text = " ".join(display_pieces)
        plain = " ".join(plain_pieces)
        if not plain.strip(EDGE_JUNK + " ") and pairs:
            # The whole name was bracketed: "(IU)" is IU.
            plain = aliases[0] if aliases else text
            aliases = aliases[1:]
    display = _tidy(_unquote(_tidy(plain)))
    name = normalize_artist(plain)
    components: tuple[str, ...] = (name,)
    if _LIST_HINT.search(plain):
        parts = tuple(c for c in map(normalize_artist, _ARTIST_LIST.split(plain)) if c)
        components = parts or components
    return ArtistSide(
        display, name, components, tuple(pairs), tuple(featuring), tuple(dict.fromkeys(aliases))
    )


def _without_tail_decoration(text: str) -> str:
    """``밤편지 MV`` -> ``밤편지``; checks the last word first because the regex is slow."""
    if not text[-6:].casefold().endswith(_TAIL_ENDINGS):
        return text
    return _tidy(_TAIL_DECORATION.sub("", text))


@lru_cache(maxsize=65536)
def read_title_side(text: str) -> TitleSide:
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
        return TitleSide(display, _key_from_folded(folded), (), ())
    main = text
    if "-" in text or "|" in text or "_" in text or " / " in text:
        segments = _TITLE_SEGMENTS.split(text)
        main = segments[0]
        for segment in segments[1:]:
            segment = segment.strip(EDGE_JUNK)
            kind, value = _classify(segment) if segment else (_DECORATION, "")
            if kind is _FEATURING:
                featured.append(value)
            elif kind is _VERSION:
                markers.append(value)
                extra_display.append(segment)
            elif kind is _OTHER:
                if main.strip(EDGE_JUNK):
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
    translation = ""
    if _has_brackets(main):
        display_pieces: list[str] = []
        plain_pieces: list[str] = []
        last = 0
        other_at = -1  # where the last bracket of other text sits in display_pieces
        for group in _GROUP.finditer(main):
            between = main[last : group.start()]
            display_pieces.append(between)
            plain_pieces.append(between)
            if between.strip(_AFTER_TITLE):
                other_at = -1  # title text follows the bracket: it is not a trailing one
            last = group.end()
            kind, value = _classify(group[0][1:-1])
            if kind is _FEATURING:
                featured.append(value)
            elif kind is not _DECORATION:
                if kind is _OTHER:
                    other_at = len(display_pieces)
                display_pieces.append(group[0])
                (markers if kind is _VERSION else alternatives).append(value)
        display_pieces.append(main[last:])
        plain_pieces.append(main[last:])
        plain = _without_tail_decoration(" ".join(plain_pieces).strip())
        tail = _without_tail_decoration(" " + main[last:].strip()).strip(_AFTER_TITLE)
        if other_at >= 0 and not tail:
            # A trailing bracket (before versions and decorations) in another script than the
            # title is its translation.
            before = " ".join(display_pieces[:other_at])
            value = alternatives[-1]
            if before.strip(EDGE_JUNK + " ") and other_script(_unquote(before.strip()), value):
                translation = _tidy(value)
                del display_pieces[other_at]
        display = _unquote(_without_tail_decoration(_tidy(" ".join(display_pieces))))
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
        return TitleSide(display, title_key, (), (), translation)
    names: list[str] = []
    pairs: list[tuple[str, str]] = []
    for value in featured:
        value_names, value_pairs = _featured_names(value)
        names.extend(value_names)
        pairs.extend(value_pairs)
    return TitleSide(display, title_key, tuple(names), tuple(pairs), translation)
