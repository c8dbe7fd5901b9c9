"""The text rules of song strings: key forms, versions, aliases, translations, artist lists."""

from __future__ import annotations

import pytest

from segue.data.song_text import (
    artist_list_key,
    normalize_artist,
    normalize_name,
    read_artist_side,
    read_title_side,
    split_script_runs,
    symbol_key,
)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Simon & Garfunkel", "simonandgarfunkel"),
        ("Florence + the Machine", "florenceandthemachine"),
        ("Beyoncé", "beyonce"),
        ("P!nk", "pnk"),
        ("방탄 소년단", "방탄소년단"),
        ("AC/DC", "acdc"),
    ],
)
def test_normalize_name(name: str, key: str) -> None:
    assert normalize_name(name) == key
    assert normalize_name(key) == key


@pytest.mark.parametrize(
    ("name", "key"),
    [("The Beatles", "beatles"), ("the  Velvet Harbors", "velvetharbors"), ("The", "the")],
)
def test_normalize_artist_also_drops_a_leading_the(name: str, key: str) -> None:
    assert normalize_artist(name) == key


# -- rule: a bracket naming the same recording is a decoration; another recording is a version
SAME_RECORDING = [
    ("Get Lucky (Radio Edit)", "Get Lucky", "getlucky"),
    ("Get Lucky - Radio Edit", "Get Lucky", "getlucky"),
    ("Hey Jude (Remastered 2009)", "Hey Jude", "heyjude"),
    ("Hey Jude - Remastered 2009", "Hey Jude", "heyjude"),
    ("Hey Jude (2011 Remaster)", "Hey Jude", "heyjude"),
    ("Hey Jude - 2015 Remastered Version", "Hey Jude", "heyjude"),
    ("Hey Jude (Single Version)", "Hey Jude", "heyjude"),
    ("Hey Jude [Album Version]", "Hey Jude", "heyjude"),
    ("Levels (Original Mix)", "Levels", "levels"),
    ("Levels (Radio Version)", "Levels", "levels"),
    ("Levels (Explicit)", "Levels", "levels"),
    ("Levels (Clean Edit)", "Levels", "levels"),
    ("Levels (Mono)", "Levels", "levels"),
    ("Levels (Official Audio)", "Levels", "levels"),
    ("Levels (Official Music Video)", "Levels", "levels"),
    ("Levels [MV]", "Levels", "levels"),
    ("Levels (Lyrics)", "Levels", "levels"),
]


@pytest.mark.parametrize(("text", "display", "key"), SAME_RECORDING)
def test_decorations_of_the_same_recording_leave_the_key(text: str, display: str, key: str) -> None:
    title = read_title_side(text)
    assert (title.display, title.key) == (display, key)


OTHER_RECORDING = [
    ("Yellow (Live)", "Yellow (Live)", "yellowlive"),
    ("Yellow - Live", "Yellow - Live", "yellowlive"),
    ("Yellow (Live at Glastonbury 2016)", "Yellow (Live at Glastonbury 2016)", "yellowliveatglastonbury2016"),
    ("Yellow (Acoustic)", "Yellow (Acoustic)", "yellowacoustic"),
    ("Yellow (Remix)", "Yellow (Remix)", "yellowremix"),
    ("Yellow (Instrumental)", "Yellow (Instrumental)", "yellowinstrumental"),
    ("Yellow (Demo)", "Yellow (Demo)", "yellowdemo"),
    ("Yellow (Extended Mix)", "Yellow (Extended Mix)", "yellowextendedmix"),
    ("Yellow (Mix)", "Yellow (Mix)", "yellowmix"),
    ("밤편지 (라이브)", "밤편지 (라이브)", "밤편지라이브"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "display", "key"), OTHER_RECORDING)
def test_other_recordings_keep_their_version_in_the_key(text: str, display: str, key: str) -> None:
    title = read_title_side(text)
    assert (title.display, title.key) == (display, key)


# -- rule: the artist's name is written without its bracketed aliases (the key form of the name is
# the written one; the alias table makes "아이유" and "IU" one artist)
ARTIST_ALIASES = [
    ("아이유 (IU)", "아이유", ("IU",), "아이유"),
    ("JANNABI(잔나비)", "JANNABI", ("잔나비",), "jannabi"),
    ("BTS (방탄소년단)", "BTS", ("방탄소년단",), "bts"),
    ("IU (아이유/李知恩)", "IU", ("아이유", "李知恩"), "iu"),
    ("(IU)", "IU", (), "iu"),
    ("Jimin (BTS)", "Jimin", ("BTS",), "jimin"),
    ("Coldplay", "Coldplay", (), "coldplay"),
]


@pytest.mark.parametrize(("text", "display", "aliases", "name"), ARTIST_ALIASES)
def test_the_artist_is_written_without_its_aliases(
    text: str, display: str, aliases: tuple[str, ...], name: str
) -> None:
    side = read_artist_side(text)
    assert (side.display, side.aliases, side.name) == (display, aliases, name)


# -- rule: a trailing bracket in another script than the title is its translation
TITLE_TRANSLATIONS = [
    ("밤편지 (Through the Night)", "밤편지", "Through the Night", "밤편지"),
    ("Palette(팔레트)", "Palette", "팔레트", "palette"),
    ("'빨간 맛 (Red Flavor)' MV", "빨간 맛", "Red Flavor", "빨간맛"),
    ("夜に駆ける (Yoru ni Kakeru)", "夜に駆ける", "Yoru ni Kakeru", "夜に駆ける"),
    ("Love Poem (러브 포엠) (Remix)", "Love Poem (Remix)", "러브 포엠", "lovepoemremix"),
    # the same script: not a translation, kept in the title
    ("Satisfaction (I Can't Get No)", "Satisfaction (I Can't Get No)", "", "satisfaction"),
    ("밤편지 (밤의 편지)", "밤편지 (밤의 편지)", "", "밤편지"),
]


@pytest.mark.parametrize(("text", "display", "translation", "key"), TITLE_TRANSLATIONS)
def test_a_bracketed_translation_is_its_own_field(
    text: str, display: str, translation: str, key: str
) -> None:
    title = read_title_side(text)
    assert (title.display, title.translation, title.key) == (display, translation, key)


# -- rule: a list of artists is the set of its names
ARTIST_LISTS = [
    ("Post Malone, Swae Lee", ("postmalone", "swaelee")),
    ("Post Malone & Swae Lee", ("postmalone", "swaelee")),
    ("Post Malone and Swae Lee", ("postmalone", "swaelee")),
    ("Post Malone x Swae Lee", ("postmalone", "swaelee")),
    ("Post Malone × Swae Lee", ("postmalone", "swaelee")),
    ("Post Malone + Swae Lee", ("postmalone", "swaelee")),
    ("Marshmello, Bastille", ("marshmello", "bastille")),
    ("Simon & Garfunkel", ("simon", "garfunkel")),
    ("Lil Nas X & Billy Ray Cyrus", ("lilnasx", "billyraycyrus")),
    ("Lil Nas X", ("lilnasx",)),
    ("Tyler, The Creator", ("tylerthecreator",)),
    ("Florence + the Machine", ("florence", "machine")),
]


@pytest.mark.parametrize(("text", "components"), ARTIST_LISTS)
def test_artist_lists_split_on_every_list_separator(text: str, components: tuple[str, ...]) -> None:
    assert read_artist_side(text).components == components


@pytest.mark.parametrize(
    ("names", "key"),
    [
        (["swaelee", "postmalone"], "postmaloneandswaelee"),
        (["postmalone", "swaelee", "postmalone"], "postmaloneandswaelee"),
        (["simon", "garfunkel"], "garfunkelandsimon"),
        (["iu"], "iu"),
    ],
)
def test_artist_list_key_is_the_sorted_set(names: list[str], key: str) -> None:
    assert artist_list_key(names) == key


# -- rule: a name written twice in two scripts, without brackets
SCRIPT_RUNS = [
    ("Red Velvet 레드벨벳", ("Red Velvet", "레드벨벳")),
    ("레드벨벳 Red Velvet", ("레드벨벳", "Red Velvet")),
    ("米津玄師 Kenshi Yonezu", ("米津玄師", "Kenshi Yonezu")),
    ("MC 몽", None),  # a one-letter run
    ("Red Velvet", None),
    ("IU 아이유 IU", None),  # three runs
    ("10cm", None),
]


@pytest.mark.parametrize(("text", "runs"), SCRIPT_RUNS)
def test_split_script_runs(text: str, runs: tuple[str, str] | None) -> None:
    assert split_script_runs(text) == runs


# -- rule: a title made only of symbols keys as its symbols
@pytest.mark.parametrize(
    ("title", "key"), [("$", "$"), ("/", "/"), ("♥", "♥"), ("? !", "?!"), ("a|b", ""), ("|", "")]
)
def test_symbol_key(title: str, key: str) -> None:
    assert symbol_key(title) == key
