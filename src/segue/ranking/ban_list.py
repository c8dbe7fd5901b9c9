"""Banned songs and artists, read from a plain text file and re-read whenever the file changes.

File format, one entry per line::

    # comments and blank lines are ignored
    iu - palette              an item key, exactly as in the catalogue
    artist:Some Artist        every item by this artist (case, spacing and known aliases ignored)

Editors change the file while the server runs; the next request sees the new list without a
restart. A file that becomes unreadable or malformed keeps the last good list (and says so in the
log) rather than unbanning everything; a deleted file means nothing is banned.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

ARTIST_PREFIX = "artist:"


class BanListError(ValueError):
    """A ban list line that cannot be understood; the message names the file and line."""


def normalise_artist(name: str) -> str:
    """The default artist identity: case-folded, inner whitespace collapsed."""
    return " ".join(name.casefold().split())


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
        identify_artist: Callable[[str], str] = normalise_artist,
    ) -> np.ndarray:
        """A boolean mask over a catalogue: True where the item or its artist is banned.

        ``artist_ids`` holds each item's artist identity; ``identify_artist`` maps a banned name
        to the same identity (e.g. through the alias table, so "아이유" bans IU's songs).
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
