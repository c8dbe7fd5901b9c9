"""The alias table: which written names denote one artist, and the artist part of every key."""

from __future__ import annotations

import pandas as pd
import pytest

from segue.data.song_aliases import AliasTable, artist_key
from segue.data.song_parser import parse_song, parse_songs


def test_alias_keys_do_not_depend_on_input_order() -> None:
    lines = [
        "IU - 밤편지",
        "JANNABI(잔나비) - 외딴섬 로맨틱",
        "아이유 (IU) - Palette",
        "잔나비 - 초록을거머쥔우리는",
    ]
    forward, _ = parse_songs(lines)
    backward, _ = parse_songs(list(reversed(lines)))
    assert [r.key for r in forward] == [r.key for r in reversed(backward)]


def test_same_script_brackets_and_ambiguous_aliases_are_not_learned() -> None:
    lines = [
        "Jimin (BTS) - Like Crazy",  # a member and the group, same script: not an alias
        "지민 (BTS) - Like Crazy",  # BTS beside two different names: ambiguous
        "뷔 (BTS) - Slow Dancing",
        "BTS (방탄소년단) - Dynamite",
        "방탄소년단 - 봄날",
    ]
    results, table = parse_songs(lines)
    assert [result.key for result in results] == [
        "jimin|likecrazy",
        "지민|likecrazy",
        "뷔|slowdancing",
        "bts|dynamite",
        "bts|봄날",
    ]
    assert table.canonical("jimin") == "jimin"


def test_a_member_does_not_take_over_a_group_that_has_its_own_alias() -> None:
    lines = ["지민 (BTS) - Like Crazy", "BTS (방탄소년단) - Dynamite", "BTS (방탄소년단) - 봄날"]
    results, _ = parse_songs([*lines, "방탄소년단 - Butter"])
    assert [result.key for result in results] == [
        "지민|likecrazy",
        "bts|dynamite",
        "bts|봄날",
        "bts|butter",
    ]


def test_a_conflict_seen_equally_often_links_neither_side() -> None:
    results, _ = parse_songs(
        ["지민 (BTS) - Like Crazy", "BTS (방탄소년단) - Dynamite", "방탄소년단 - Butter"]
    )
    assert [result.key for result in results] == [
        "지민|likecrazy",
        "bts|dynamite",
        "방탄소년단|butter",
    ]


def test_the_more_often_written_alias_wins_a_conflict() -> None:
    lines = [
        "아이유 (IU) - 밤편지",
        "아이유 (IU) - Palette",
        "IU (이지은) - 좋은 날",
        "이지은 - Blueming",
    ]
    results, table = parse_songs(lines)
    assert [result.key for result in results] == [
        "iu|밤편지",
        "iu|palette",
        "iu|좋은날",
        "이지은|blueming",
    ]
    assert table.canonical("아이유") == "iu"


def test_alias_table_round_trips_through_a_frame() -> None:
    table = AliasTable()
    for form in ("IU (아이유)", "JANNABI(잔나비)", "Coldplay", "IU (이지은)"):
        table.learn(form)
    frame = table.to_frame()
    assert list(frame.columns) == ["alias", "artist"]
    assert sorted(map(tuple, frame.to_numpy().tolist())) == [
        ("아이유", "iu"),
        ("이지은", "iu"),
        ("잔나비", "jannabi"),
    ]
    loaded = AliasTable.from_frame(frame)
    assert loaded.to_frame().equals(frame)
    assert loaded.canonical("이지은") == "iu"


def test_a_loaded_tables_canonical_names_survive_extension() -> None:
    saved = AliasTable.from_frame(pd.DataFrame({"alias": ["iu"], "artist": ["아이유"]}))
    results, extended = parse_songs(["IU (이지은) - 밤편지"], saved)
    assert results[0].key == "아이유|밤편지"
    assert extended.canonical("이지은") == "아이유"


def test_alias_table_rejects_a_frame_without_its_columns() -> None:
    with pytest.raises(ValueError, match="alias"):
        AliasTable.from_frame(pd.DataFrame({"name": ["x"]}))


def test_artist_key_is_the_artist_part_the_parser_gives_that_artists_songs() -> None:
    def parsed_artist(raw: str, table: AliasTable | None = None) -> str:
        return parse_song(raw, table).key.split("|")[0]

    assert artist_key("Simon & Garfunkel") == parsed_artist("Simon and Garfunkel - The Boxer")
    assert artist_key("The Beatles") == parsed_artist("Beatles - Yellow Submarine") == "beatles"
    assert artist_key("Dua Lipa feat. DaBaby") == "dualipa"
    assert artist_key("아이유 (IU)") == parsed_artist("00:00 아이유 (IU) - 밤편지 [MV]") == "iu"
    assert artist_key("  ") == artist_key("") == ""
    table = AliasTable()
    table.learn("아이유 (IU)")
    assert artist_key("아이유", table) == parsed_artist("IU - 밤편지", table) == "iu"
    assert table.canonical("아이유 (IU)") == artist_key("아이유 (IU)", table) == "iu"


def test_mapping_is_every_grouped_name_to_its_canonical_name() -> None:
    table = AliasTable()
    table.learn("아이유 (IU)")
    table.learn("Coldplay")
    assert dict(table.mapping()) == {"아이유": "iu", "iu": "iu"}


# -- rule: artist_key of a list is the set of its canonical names, in any order or separator
ARTIST_LIST_KEYS = [
    ("Post Malone, Swae Lee", "postmaloneandswaelee"),
    ("Swae Lee & Post Malone", "postmaloneandswaelee"),
    ("Post Malone x Swae Lee feat. Someone", "postmaloneandswaelee"),
    ("Simon & Garfunkel", "garfunkelandsimon"),
    ("Simon and Garfunkel", "garfunkelandsimon"),
    ("잔나비 (JANNABI) & 아이유 (IU)", "iuandjannabi"),
    ("IU & 아이유", "iuand아이유"),  # no table, no bracket: two names
]


@pytest.mark.parametrize(("written", "key"), ARTIST_LIST_KEYS)
def test_artist_key_of_a_list_ignores_order_and_separators(written: str, key: str) -> None:
    assert artist_key(written) == key


def test_artist_key_of_a_list_canonicalises_each_name_with_a_table() -> None:
    table = AliasTable()
    table.learn("아이유 (IU)")
    assert artist_key("IU & 아이유", table) == "iu"
    assert artist_key("아이유, Swae Lee", table) == artist_key("Swae Lee & IU", table)
