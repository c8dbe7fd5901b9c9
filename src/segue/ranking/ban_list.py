"""Banned songs and artists, read from a plain text file and re-read whenever the file changes.

File format, one entry per line::

    # comments and blank lines are ignored
    iu|palette                an item key, exactly as in the catalogue
    artist:아이유 (IU)         every item by this artist, written as a song string writes it

Editors change the file while the server runs; the next request sees the new list without a
restart. A file that becomes unreadable or malformed keeps the last good list (and says so in the
log) rather than unbanning everything; a deleted file means nothing is banned.

An ``artist:`` name is read the way the song parser reads the artist side of a song string
(:func:`segue.data.song_aliases.artist_key`): case, spacing, a leading "The", decorations and
aliases written in brackets are ignored, so ``artist:아이유 (IU)`` bans the songs parsed as
IU's; with the catalogue's alias table (as serving passes it) ``artist:아이유`` does too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segue.data.song_aliases import artist_key

logger = logging.getLogger(__name__)

ARTIST_PREFIX = "artist:"


class BanListError(ValueError):
    """A ban list line that cannot be understood; the message names the file and line."""


@dataclass(frozen=True)
class BanList:
    """Item keys and artist names (as written in the file) that must never be recommended."""

    keys: frozenset[str] = frozenset()
    artists: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.keys or self.artists)

    def banned_mask(
        self,
        keys: np.ndarray,
        artist_ids: np.ndarray,
        identify_artist: Callable[[str], str] = artist_key,
    ) -> np.ndarray:
        """A boolean mask over a catalogue: True where the item or its artist is banned.

        ``artist_ids`` holds each item's artist identity (the artist part of its song key);
        ``identify_artist`` maps a banned name to the same identity, by default as the parser
        reads an artist (pass the catalogue's alias table, so "아이유" bans IU's songs).
        """
        mask = np.zeros(len(keys), dtype=bool)
        if self.keys:
            mask |= np.isin(keys, list(self.keys))
        banned_ids = {identify_artist(name) for name in self.artists} - {""}
        if banned_ids:
            mask |= np.isin(artist_ids, list(banned_ids))
        return mask


EMPTY_BAN_LIST = BanList()


def parse_ban_list(text: str, source: str = "<ban list>") -> BanList:
    """Parse the file format above; a bare ``artist:`` line is an error naming its line."""
    keys: set[str] = set()
    artists: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.casefold().startswith(ARTIST_PREFIX):
            artist = " ".join(line[len(ARTIST_PREFIX) :].split())
            if not artist:
                raise BanListError(f"{source}:{number}: 'artist:' must be followed by a name")
            artists.add(artist)
        else:
            keys.add(line)
    return BanList(frozenset(keys), frozenset(artists))


class BanListFile:
    """The ban list at ``path``, re-read when its modification time, size or inode changes.

    ``current()`` costs one ``stat`` call when nothing changed, cheap enough for every request.
    With no path configured it always returns the empty list.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._ban_list = EMPTY_BAN_LIST

    def current(self) -> BanList:
        if self.path is None:
            return EMPTY_BAN_LIST
        try:
            stat = os.stat(self.path)
        except OSError:
            return self._missing()
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if signature == self._signature:
            return self._ban_list
        with self._lock:
            if signature != self._signature:
                self._reload(signature)
            return self._ban_list

    def _missing(self) -> BanList:
        with self._lock:
            if self._signature != (-1, -1, -1):
                logger.warning(
                    "ban list %s is missing; nothing is banned until it exists", self.path
                )
                self._signature = (-1, -1, -1)
                self._ban_list = EMPTY_BAN_LIST
            return self._ban_list

    def _reload(self, signature: tuple[int, int, int]) -> None:
        assert self.path is not None
        try:
            text = self.path.read_text(encoding="utf-8")
            ban_list = parse_ban_list(text, str(self.path))
        except (OSError, UnicodeDecodeError, BanListError) as error:
            logger.error("ban list not reloaded, keeping the previous one: %s", error)
        else:
            self._ban_list = ban_list
            logger.info(
                "ban list %s: %d keys, %d artists",
                self.path,
                len(ban_list.keys),
                len(ban_list.artists),
            )
        # Remember the signature either way, so a broken file is reported once, not per request.
        self._signature = signature
