"""The ban list file: its format, and re-reading it when editors change it under a running server."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from segue.data.song_parser import KEY_SEPARATOR, parse_songs
from segue.ranking.ban_list import BanListError, BanListFile, parse_ban_list


def test_parse_reads_keys_and_artists_and_skips_comments() -> None:
    text = "# banned\n\niu - palette\nartist:  Big   BANG \n  ARTIST:Some One\n"
    ban_list = parse_ban_list(text)
    assert ban_list.keys == frozenset({"iu - palette"})
    assert ban_list.artists == frozenset({"Big BANG", "Some One"})


def test_bare_artist_prefix_names_the_file_and_line() -> None:
    with pytest.raises(BanListError, match=r"bans.txt:2: 'artist:' must be followed by a name"):
        parse_ban_list("a - b\nartist:   \n", "bans.txt")


def test_mask_bans_listed_keys_and_every_song_of_a_listed_artist() -> None:
    ban_list = parse_ban_list("k1\nartist:B\n")
    keys = np.array(["k0", "k1", "k2", "k3"], dtype=object)
    artists = np.array(["a", "a", "b", ""], dtype=object)
    assert ban_list.banned_mask(keys, artists).tolist() == [False, True, True, False]


def test_mask_identifies_banned_artists_like_the_catalogue_does() -> None:
    aliases = {"아이유": "iu"}
    ban_list = parse_ban_list("artist:아이유\n")
    artist_ids = np.array(["iu", "bts"], dtype=object)
    mask = ban_list.banned_mask(np.array(["x", "y"]), artist_ids, lambda n: aliases.get(n, n))
    assert mask.tolist() == [True, False]


@pytest.mark.parametrize("line", ["artist:아이유 (IU)", "artist:  IU ", "artist:iu [Official]"])
def test_an_artist_line_written_like_a_playlist_string_bans_that_artists_songs(line: str) -> None:
    songs = [
        "00:00 아이유 (IU) - 밤편지 [MV]",
        "IU - Palette",
        "잔나비 - 외딴섬",
        "The IU Band - X",
    ]
    results, _ = parse_songs(songs)
    keys = np.array([song.key for song in results], dtype=object)
    artist_ids = np.array([key.split(KEY_SEPARATOR)[0] for key in keys], dtype=object)
    mask = parse_ban_list(line + "\n").banned_mask(keys, artist_ids)
    assert mask.tolist() == [True, True, False, False]


def test_an_artist_line_ignores_a_leading_the_like_the_parser() -> None:
    (song,), _ = parse_songs(["The Beatles - Yellow Submarine"])
    artist_ids = np.array([song.key.split(KEY_SEPARATOR)[0]], dtype=object)
    mask = parse_ban_list("artist:Beatles\n").banned_mask(np.array([song.key]), artist_ids)
    assert mask.tolist() == [True]


def test_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "bans.txt"
    path.write_text("k1\n", encoding="utf-8")
    bans = BanListFile(path)
    assert bans.current().keys == frozenset({"k1"})
    assert bans.current() is bans.current()  # unchanged file: no re-read

    replacement = tmp_path / "bans.new"
    replacement.write_text("k2\nartist:x\n", encoding="utf-8")
    os.replace(replacement, path)  # how editors and config tools save
    assert bans.current().keys == frozenset({"k2"})
    assert bans.current().artists == frozenset({"x"})


def test_a_broken_edit_keeps_the_last_good_list(tmp_path: Path) -> None:
    path = tmp_path / "bans.txt"
    path.write_text("k1\n", encoding="utf-8")
    bans = BanListFile(path)
    assert bans.current().keys == frozenset({"k1"})
    path.write_text("k1\nartist:\nk2\n", encoding="utf-8")
    assert bans.current().keys == frozenset({"k1"})


def test_missing_or_unset_file_bans_nothing(tmp_path: Path) -> None:
    assert not BanListFile(None).current()
    bans = BanListFile(tmp_path / "absent.txt")
    assert not bans.current()
    (tmp_path / "absent.txt").write_text("k9\n", encoding="utf-8")
    assert bans.current().keys == frozenset({"k9"})
