"""The song-string parser: what ingestion and `segue songs parse` promise about every string."""

from __future__ import annotations

import random

import pytest

from segue.data.song_aliases import AliasTable
from segue.data.song_parser import (
    ParsedSong,
    SongParseError,
    item_artist_ids,
    parse_song,
    parse_songs,
)

# raw string -> (artist, title, featuring, key), parsed on its own (no alias table)
PARSED = {
    # the example: timestamp, alias in brackets, decoration
    "00:00 아이유 (IU) - 밤편지 [Official MV]": ("아이유", "밤편지", (), "iu|밤편지"),
    "IU - 밤편지": ("IU", "밤편지", (), "iu|밤편지"),
    "Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "The Beatles - Yellow Submarine": (
        "The Beatles",
        "Yellow Submarine",
        (),
        "beatles|yellowsubmarine",
    ),
    # positions
    "1:02:03 Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "[03:15] Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "(03:15) Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "00:00 - 03:15 Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "1. Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "01) Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "#3 Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "12. 04:31 Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow 04:31": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    # separators
    "Coldplay – Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay — Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay － Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay | Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay｜Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay－Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay–Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay _ Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay / Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay -Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay- Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    # hyphens and slashes inside names are not separators
    "JAY-Z - Empire State of Mind": ("JAY-Z", "Empire State of Mind", (), "jayz|empirestateofmind"),
    "Anne-Marie - 2002": ("Anne-Marie", "2002", (), "annemarie|2002"),
    "AC/DC - Back In Black": ("AC/DC", "Back In Black", (), "acdc|backinblack"),
    # decorations
    "Coldplay - Yellow (Official Video)": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow [MV]": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow (Lyrics)": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow (Audio)": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow [4K]": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow (Official Music Video)": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow [M/V]": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "【MV】Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "[MV] Coldplay - Yellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow (Official Lyric Video) [HD]": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow (Remastered 2015)": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow - Remastered 2015": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow | Lyrics": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow M/V": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay - Yellow (Color Coded Lyrics Eng/Han)": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "아이유 - 밤편지 (가사)": ("아이유", "밤편지", (), "아이유|밤편지"),
    "아이유 - 밤편지 [한글자막]": ("아이유", "밤편지", (), "아이유|밤편지"),
    "Coldplay - Yellow (Official Video": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    # emoji, case, spacing, full-width, diacritics
    "🎵 Coldplay - Yellow ✨": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "COLDPLAY - YELLOW": ("COLDPLAY", "YELLOW", (), "coldplay|yellow"),
    "  coldplay   -   yellow  ": ("coldplay", "yellow", (), "coldplay|yellow"),
    "Ｃｏｌｄｐｌａｙ － Ｙｅｌｌｏｗ": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Coldplay\t-\tYellow": ("Coldplay", "Yellow", (), "coldplay|yellow"),
    "Beyoncé - Halo": ("Beyoncé", "Halo", (), "beyonce|halo"),
    "아이유 - 밤 편지": ("아이유", "밤 편지", (), "아이유|밤편지"),
    # & and "and"
    "Simon & Garfunkel - The Boxer": (
        "Simon & Garfunkel",
        "The Boxer",
        (),
        "garfunkelandsimon|theboxer",
    ),
    "Simon and Garfunkel - The Boxer": (
        "Simon and Garfunkel",
        "The Boxer",
        (),
        "garfunkelandsimon|theboxer",
    ),
    # featuring, on both sides, bracketed or not
    "IU - Palette (feat. G-DRAGON)": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU - Palette [Feat. G-DRAGON]": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU - Palette ft. G-DRAGON": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU - Palette featuring G-DRAGON": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU - Palette (with G-DRAGON)": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU feat. G-DRAGON - Palette": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU ft. G-DRAGON - Palette": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU (Feat. G-DRAGON) - Palette": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "IU with G-DRAGON - Palette": ("IU", "Palette", ("G-DRAGON",), "iu|palette"),
    "Dua Lipa - Levitating (feat. DaBaby) [Official Music Video]": (
        "Dua Lipa",
        "Levitating",
        ("DaBaby",),
        "dualipa|levitating",
    ),
    "A - Song (feat. B, C & D)": ("A", "Song", ("B", "C", "D"), "a|song"),
    # "with" in a title is just a word
    "Sam Smith - Dancing With A Stranger": (
        "Sam Smith",
        "Dancing With A Stranger",
        (),
        "samsmith|dancingwithastranger",
    ),
    # aliases and translations in brackets
    "JANNABI(잔나비) - 뜨거운 여름밤은 가고 남은 건 볼품없지만": (
        "JANNABI",
        "뜨거운 여름밤은 가고 남은 건 볼품없지만",
        (),
        "jannabi|뜨거운여름밤은가고남은건볼품없지만",
    ),
    "[MV] IU(아이유) _ Palette(팔레트) (Feat. G-DRAGON)": (
        "IU",
        "Palette",
        ("G-DRAGON",),
        "iu|palette",
    ),
    "IU - 밤편지 (Through the Night)": ("IU", "밤편지", (), "iu|밤편지"),
    # version markers stay in the key
    "IU - Palette (Remix)": ("IU", "Palette (Remix)", (), "iu|paletteremix"),
    "Justin Bieber - Love Yourself (Acoustic Ver.)": (
        "Justin Bieber",
        "Love Yourself (Acoustic Ver.)",
        (),
        "justinbieber|loveyourselfacousticver",
    ),
    "Taylor Swift - Love Story (Taylor's Version)": (
        "Taylor Swift",
        "Love Story (Taylor's Version)",
        (),
        "taylorswift|lovestorytaylorsversion",
    ),
    # quoted or bracketed titles without a separator
    "아이유 '밤편지' MV": ("아이유", "밤편지", (), "아이유|밤편지"),
    'IU "Palette"': ("IU", "Palette", (), "iu|palette"),
    "周杰倫【告白氣球】Official MV": ("周杰倫", "告白氣球", (), "周杰倫|告白氣球"),
    # no separator: the artist is unknown and the whole string is the title
    "밤편지": ("", "밤편지", (), "|밤편지"),
    "Don't Stop Believin'": ("", "Don't Stop Believin'", (), "|dontstopbelievin"),
    "IU-Palette": ("", "IU-Palette", (), "|iupalette"),
    "- 밤편지": ("", "밤편지", (), "|밤편지"),
}


@pytest.mark.parametrize("raw", list(PARSED))
def test_parse_song_reads_artist_title_featuring_and_key(raw: str) -> None:
    song = parse_song(raw)
    assert song.raw == raw
    assert (song.artist, song.title, song.featuring, song.key) == PARSED[raw]


SAME_SONG = [
    [
        "00:00 아이유 (IU) - 밤편지 [Official MV]",
        "아이유 - 밤편지",
        "IU - 밤편지",
        "iu – 밤 편지 (Lyrics)",
        "1. 아이유 | 밤편지 (Through the Night)",
        "[MV] IU(아이유) _ 밤편지",
        "🌙 아이유 '밤편지'",
    ],
    [
        "Simon & Garfunkel - The Sound of Silence",
        "Simon and Garfunkel - The Sound Of Silence (Audio)",
        "SIMON AND GARFUNKEL｜THE SOUND OF SILENCE",
        "#7 simon  &  garfunkel — the sound of silence [4K]",
    ],
    [
        "Dua Lipa - Levitating (feat. DaBaby)",
        "Dua Lipa feat. DaBaby - Levitating",
        "Dua Lipa - Levitating",
        "Dua Lipa ft. DaBaby – Levitating [Official Music Video]",
    ],
    [
        "The Beatles - Hey Jude",
        "Beatles - Hey Jude",
        "the beatles－hey jude",
    ],
    [
        "Beyoncé - Halo",
        "Beyonce - Halo (Official Video)",
        "BEYONCÉ - HALO",
    ],
    [
        "JANNABI(잔나비) - 주저하는 연인들을 위해",
        "잔나비 - 주저하는 연인들을 위해",
        "jannabi - 주저하는 연인들을 위해 (Official Audio)",
    ],
]


@pytest.mark.parametrize("group", SAME_SONG, ids=lambda group: group[0])
def test_one_song_written_differently_gets_one_key(group: list[str]) -> None:
    results, _ = parse_songs(group)
    assert len({result.key for result in results}) == 1, [r.key for r in results]


DIFFERENT_SONGS = [
    ("IU - 밤편지", "IU - 좋은 날"),
    ("IU - Love", "Coldplay - Love"),
    ("Taylor Swift - Love Story", "Taylor Swift - Love Story (Taylor's Version)"),
    ("IU - Palette", "IU - Palette (Remix)"),
    ("Justin Bieber - Love Yourself", "Justin Bieber - Love Yourself (Acoustic Ver.)"),
    ("The Beatles - Yellow Submarine", "The Beatles - Yellow"),
    ("Simon & Garfunkel - The Boxer", "Simon - The Boxer"),
    ("IU - 밤편지", "밤편지"),
    ("JANNABI - 주저하는 연인들을 위해", "jannabi - 주저하는 연인들을 위해 (Live)"),
]


@pytest.mark.parametrize(("first", "second"), DIFFERENT_SONGS)
def test_different_songs_get_different_keys(first: str, second: str) -> None:
    results, _ = parse_songs([first, second])
    assert results[0].key != results[1].key


BAD = [
    ("", "empty"),
    ("   \t ", "empty"),
    ("\ud800", "lone surrogate"),
    ("IU - \udc80밤편지", "lone surrogate"),
    ("x" * 10_000, "too long"),
    ("[MV] (Official Video)", "no title"),
    ("【MV】 (Lyrics) [4K]", "no title"),
    ("IU - ", "no title"),
    ("IU - (Official Audio)", "no title"),
    ("🎵✨", "no title"),
    ("00:00", "no title"),
]


@pytest.mark.parametrize(("raw", "reason"), BAD)
def test_bad_strings_raise_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(SongParseError) as caught:
        parse_song(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize("raw", [None, 42, b"IU - Palette", ["IU - Palette"]])
def test_non_strings_raise_not_a_string(raw: object) -> None:
    with pytest.raises(SongParseError) as caught:
        parse_song(raw)  # type: ignore[arg-type]
    assert caught.value.reason == "not a string"


def test_max_length_is_a_parameter() -> None:
    assert parse_song("IU - Palette", max_length=12).title == "Palette"
    with pytest.raises(SongParseError, match="too long"):
        parse_song("IU - Palette", max_length=11)


def test_parse_songs_reports_errors_in_place_and_keeps_order() -> None:
    results, _ = parse_songs(["IU - Palette", "", 7, "Coldplay - Yellow"])  # type: ignore[list-item]
    assert [type(result) for result in results] == [
        ParsedSong,
        SongParseError,
        SongParseError,
        ParsedSong,
    ]
    assert [getattr(result, "reason", None) for result in results] == [
        None,
        "empty",
        "not a string",
        None,
    ]


def test_aliases_learned_anywhere_in_the_corpus_apply_to_every_line() -> None:
    lines = [
        "IU - 밤편지",
        "아이유 - 좋은 날",
        "아이유 (IU) - Palette",
        "잔나비 - 꿈과 책과 힘과 벽",
    ]
    results, table = parse_songs(lines)
    assert [result.key for result in results] == [
        "iu|밤편지",
        "iu|좋은날",
        "iu|palette",
        "잔나비|꿈과책과힘과벽",
    ]
    assert table.canonical("아이유") == table.canonical("IU") == "iu"
    assert len(table) == 1


def test_aliases_in_featured_names_are_learned() -> None:
    results, table = parse_songs(["IU - 에잇 (feat. 슈가 (SUGA))", "슈가 - Daechwita"])
    assert results[0].featuring == ("슈가 (SUGA)",)
    assert results[1].key == "suga|daechwita"
    assert table.canonical("슈가") == "suga"


def test_each_artist_of_a_duet_is_canonicalised() -> None:
    results, _ = parse_songs(
        ["아이유 (IU) - 밤편지", "JANNABI(잔나비) - 외딴섬", "잔나비 & 아이유 - 듀엣"]
    )
    assert results[2].key == "iuandjannabi|듀엣"


def test_a_given_table_is_extended_as_a_copy() -> None:
    table = AliasTable()
    table.learn("아이유 (IU)")
    results, extended = parse_songs(["잔나비 (JANNABI) - 외딴섬", "아이유 - 밤편지"], table)
    assert [result.key for result in results] == ["jannabi|외딴섬", "iu|밤편지"]
    assert extended.canonical("잔나비") == "jannabi"
    assert table.canonical("잔나비") == "잔나비"


def test_learn_false_uses_the_table_as_is() -> None:
    table = AliasTable()
    table.learn("아이유 (IU)")
    results, same = parse_songs(["JANNABI(잔나비) - 외딴섬", "아이유 - 밤편지"], table, learn=False)
    assert [result.key for result in results] == ["jannabi|외딴섬", "iu|밤편지"]
    assert same.canonical("잔나비") == "잔나비"


def test_parse_song_with_a_table_uses_only_the_table() -> None:
    table = AliasTable()
    table.learn("IU (아이유)")
    assert parse_song("아이유 - 밤편지", table).key == "iu|밤편지"
    assert parse_song("잔나비 (JANNABI) - 외딴섬", table).key == "잔나비|외딴섬"
    assert parse_song("잔나비 (JANNABI) - 외딴섬").key == "jannabi|외딴섬"


def test_arbitrary_text_parses_or_raises_song_parse_error() -> None:
    rng = random.Random(7)
    alphabet = "aZ09 -|_/~()[]{}【】「」'\"&+.,:#–—－｜（）아이유周🎵\u200b\t\ud800é"
    for _ in range(3000):
        raw = "".join(rng.choices(alphabet, k=rng.randint(0, 40)))
        try:
            song = parse_song(raw)
        except SongParseError as error:
            assert error.reason
        else:
            assert song.key.count("|") == 1 and song.key.split("|")[1]


def test_item_artist_ids_read_the_key_else_the_display_artist() -> None:
    keys = ["iu|밤편지", "|밤편지", "1", "2"]
    artists = ["아이유 (IU)", "", "The Beatles", ""]
    assert item_artist_ids(keys, artists) == ["iu", "", "beatles", ""]
    table = AliasTable()
    table.learn("IU (아이유)")
    assert item_artist_ids(["7"], ["아이유"], table) == ["iu"]


# -- rule: fields as a person writes them (aliases and translations apart), one whole string each
FIELDS = {
    "00:00 아이유 (IU) - 밤편지 (Through the Night) [Official MV]": (
        "아이유", ("IU",), "밤편지", "Through the Night", "iu|밤편지",
    ),
    "JANNABI(잔나비) - 주저하는 연인들을 위해": (
        "JANNABI", ("잔나비",), "주저하는 연인들을 위해", "", "jannabi|주저하는연인들을위해",
    ),
    "[MV] IU(아이유) _ Palette(팔레트) (Feat. G-DRAGON)": (
        "IU", ("아이유",), "Palette", "팔레트", "iu|palette",
    ),
    "Red Velvet 레드벨벳 '빨간 맛 (Red Flavor)' MV": (
        "Red Velvet 레드벨벳", (), "빨간 맛", "Red Flavor", "redvelvet레드벨벳|빨간맛",
    ),
    "Coldplay - Yellow": ("Coldplay", (), "Yellow", "", "coldplay|yellow"),
}  # fmt: skip


@pytest.mark.parametrize("raw", list(FIELDS))
def test_artist_aliases_and_title_translation_are_their_own_fields(raw: str) -> None:
    song = parse_song(raw)
    fields = (song.artist, song.artist_aliases, song.title, song.title_translation, song.key)
    assert fields == FIELDS[raw]


# -- rule: a title made only of symbols is a real song, keyed by its symbols
SYMBOL_TITLES = {
    "Ty Dolla $ign - $": ("Ty Dolla $ign", "$", "tydollaign|$"),
    "Chet Faker - /": ("Chet Faker", "/", "chetfaker|/"),
    "Baths - ♥": ("Baths", "♥", "baths|♥"),
    "03:12 Baths - ♥ [Official Audio]": ("Baths", "♥", "baths|♥"),
}


@pytest.mark.parametrize("raw", list(SYMBOL_TITLES))
def test_titles_made_of_symbols_are_kept(raw: str) -> None:
    song = parse_song(raw)
    assert (song.artist, song.title, song.key) == SYMBOL_TITLES[raw]


@pytest.mark.parametrize("raw", ["IU - 🎵", "IU - ", "IU - (Official Audio)", "🎵✨", "$"])
def test_pictographs_debris_and_symbols_without_an_artist_are_still_no_title(raw: str) -> None:
    with pytest.raises(SongParseError, match="no title"):
        parse_song(raw) if raw != "$" else _raise_unless_parsed(raw)


def _raise_unless_parsed(raw: str) -> None:
    # "$" alone has no separator, so no artist: without letters it is not a title.
    parse_song(raw)


# -- rule: the corpus is the known-artist table (ingest parses a whole corpus at once)
KNOWN_ARTIST_CORPUS = [
    # an artist written twice in two scripts, without brackets, when either name is known
    (
        ["Red Velvet - Psycho", "Red Velvet 레드벨벳 '빨간 맛 (Red Flavor)' MV", "레드벨벳 - 빨간 맛"],
        ["redvelvet|psycho", "redvelvet|빨간맛", "redvelvet|빨간맛"],
    ),
    # a string without a separator naming a known artist's known title
    (
        ["IU - Palette (feat. G-DRAGON)", "IU Palette", "아이유 (IU) - 밤편지", "아이유 밤편지 MV"],
        ["iu|palette", "iu|palette", "iu|밤편지", "iu|밤편지"],
    ),
    # no split when the rest is not a title the artist is known for
    (["IU - Palette", "IU Love Poem", "Love Story"], ["iu|palette", "|iulovepoem", "|lovestory"]),
    # no alias when neither name is known
    (["Zico 지코 - Any Song"], ["zico지코|anysong"]),
]  # fmt: skip


@pytest.mark.parametrize(("corpus", "keys"), KNOWN_ARTIST_CORPUS)
def test_the_corpus_splits_strings_by_known_artists(corpus: list[str], keys: list[str]) -> None:
    results, _ = parse_songs(corpus)
    assert [result.key for result in results] == keys


def test_a_split_by_a_known_artist_fills_the_fields() -> None:
    results, table = parse_songs(["Red Velvet - Psycho", "Red Velvet 레드벨벳 - Bad Boy"])
    assert (results[1].artist, results[1].artist_aliases) == ("Red Velvet", ("레드벨벳",))
    assert table.canonical("레드벨벳") == "redvelvet"
    # serving parses one string with the dataset's table: the same key
    assert parse_song("Red Velvet 레드벨벳 - Bad Boy", table).key == results[1].key
    split, _ = parse_songs(["IU - Palette", "IU Palette"])
    assert (split[1].artist, split[1].title) == ("IU", "Palette")


# -- the labelled set: groups of strings naming one song; keys must agree within a group and
# differ across groups. `labelled_pairs` measures pairwise precision and recall on it.
LABELLED_SONGS: list[list[str]] = [
    ["Post Malone, Swae Lee - Sunflower", "Post Malone & Swae Lee - Sunflower",
     "Swae Lee & Post Malone - Sunflower (Official Video)", "Post Malone x Swae Lee | Sunflower"],
    ["Daft Punk - Get Lucky (Radio Edit) ft. Pharrell Williams, Nile Rodgers",
     "Daft Punk - Get Lucky (feat. Pharrell Williams & Nile Rodgers)",
     "Daft Punk ft. Pharrell Williams - Get Lucky [Official Audio]"],
    ["Daft Punk - Get Lucky (Live)"],
    ["Red Velvet 레드벨벳 '빨간 맛 (Red Flavor)' MV", "Red Velvet - 빨간 맛 (Red Flavor)",
     "레드벨벳 (Red Velvet) - 빨간 맛"],
    ["Red Velvet - Psycho", "Red Velvet (레드벨벳) - Psycho [Official MV]"],
    ["00:00 아이유 (IU) - 밤편지 [Official MV]", "IU - 밤편지 (Through the Night)",
     "아이유 | 밤편지", "[MV] IU(아이유) _ 밤편지(Through the Night)"],
    ["아이유 - 밤편지 (Live)", "IU - 밤편지 - Live"],
    ["IU - Palette (feat. G-DRAGON)", "IU with G-DRAGON - Palette", "IU - Palette",
     "IU(아이유) _ Palette(팔레트) (Feat. G-DRAGON) MV"],
    ["IU - Palette (Remix)"],
    ["The Beatles - Hey Jude (Remastered 2015)", "Beatles - Hey Jude",
     "The Beatles - Hey Jude - 2009 Remaster", "The Beatles – Hey Jude (Single Version)"],
    ["The Beatles - Hey Jude (Demo)"],
    ["The Beatles - Hey Jude (Anthology 3 Version)"],
    ["Queen - Bohemian Rhapsody (Official Video Remastered)", "Queen - Bohemian Rhapsody",
     "Queen – Bohemian Rhapsody [Remastered 2011]"],
    ["Queen - Bohemian Rhapsody (Live Aid 1985)"],
    ["Simon & Garfunkel - The Sound of Silence", "Simon and Garfunkel - The Sound Of Silence",
     "SIMON & GARFUNKEL｜THE SOUND OF SILENCE (Audio)"],
    ["Simon & Garfunkel - The Sound of Silence (Acoustic)"],
    ["Paul Simon - The Sound of Silence"],
    ["Ty Dolla $ign - $", "Ty Dolla $ign – $ (Official Audio)"],
    ["Chet Faker - /"],
    ["Baths - ♥", "Baths | ♥"],
    ["Marshmello x Bastille - Happier", "Marshmello, Bastille - Happier (Official Music Video)",
     "Bastille & Marshmello - Happier"],
    ["Marshmello x Bastille - Happier (Acoustic)"],
    ["Lil Nas X & Billy Ray Cyrus - Old Town Road (Remix)",
     "Lil Nas X, Billy Ray Cyrus - Old Town Road (Remix) [Official Video]"],
    ["Lil Nas X - Old Town Road", "Lil Nas X - Old Town Road (Official Audio)"],
    ["Tyler, The Creator - EARFQUAKE", "Tyler, The Creator - EARFQUAKE (Official Video)"],
    ["Avicii - Levels (Radio Edit)", "Avicii - Levels (Original Mix)", "Avicii - Levels"],
    ["Avicii - Levels (Skrillex Remix)"],
    ["Coldplay - Yellow (Official Video)", "Coldplay - Yellow", "coldplay - yellow [4K]"],
    ["Coldplay - Yellow (Live at Glastonbury 2016)"],
    ["Coldplay - Yellow (Instrumental)"],
    ["JANNABI(잔나비) - 주저하는 연인들을 위해", "잔나비 - 주저하는 연인들을 위해 (Official Audio)"],
    ["잔나비 - 주저하는 연인들을 위해 (Live)"],
    ["BTS (방탄소년단) - Dynamite", "방탄소년단 - Dynamite (Official MV)", "BTS - Dynamite"],
    ["BTS (방탄소년단) - Dynamite (Instrumental)"],
    ["米津玄師 - Lemon", "米津玄師 Kenshi Yonezu - Lemon", "Kenshi Yonezu (米津玄師) - Lemon MV"],
    ["YOASOBI - 夜に駆ける (Yoru ni Kakeru)", "YOASOBI - 夜に駆ける"],
    ["Florence + the Machine - Dog Days Are Over", "Florence and the Machine - Dog Days Are Over"],
]  # fmt: skip


def labelled_pairs(keys: list[list[str]]) -> tuple[float, float]:
    """Pairwise precision and recall of keys against the groups they were parsed from."""
    flat = [(group, key) for group, members in enumerate(keys) for key in members]
    true_positive = predicted = actual = 0
    for i, (group_i, key_i) in enumerate(flat):
        for group_j, key_j in flat[i + 1 :]:
            same_song, same_key = group_i == group_j, key_i == key_j
            true_positive += same_song and same_key
            predicted += same_key
            actual += same_song
    return true_positive / max(predicted, 1), true_positive / max(actual, 1)


def test_the_labelled_set_keys_one_song_one_key() -> None:
    results, _ = parse_songs([raw for group in LABELLED_SONGS for raw in group])
    keys = iter(result.key for result in results)
    grouped = [[next(keys) for _ in group] for group in LABELLED_SONGS]
    precision, recall = labelled_pairs(grouped)
    assert (precision, recall) == (1.0, 1.0), grouped
