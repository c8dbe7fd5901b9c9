"""The alias table: names that denote one artist, and the artist part of every song key.

Tracklists write one artist in several scripts (``아이유 (IU)``, ``IU``, ``아이유``); the table
learns which names go together from the brackets of every string of a corpus and gives each group
one canonical name, so the parser (:mod:`segue.data.song_parser`), the ban list and serving agree
on who an artist is through :func:`artist_key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from segue.data.song_text import (
    EDGE_JUNK,
    NO_ARTIST,
    ArtistSide,
    artist_list_key,
    clean_field,
    normalize_name,
    read_artist_side,
    scripts_of,
)

if TYPE_CHECKING:
    import pandas as pd


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
        self.add_pairs(read_artist_side(clean_field(artist_form)).pairs)

    def add_pairs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (name, alias) observations given in key form."""
        for name, alias in pairs:
            if not name or not alias or name == alias or alias.isdigit() or name.isdigit():
                continue
            if scripts_of(name) == scripts_of(alias):
                continue
            claimants = self._claims.setdefault(alias, {})
            claimants[name] = claimants.get(name, 0) + 1
            self._resolved = None

    def canonical(self, name: str) -> str:
        """The canonical key form of an artist name (the name itself when it has no aliases).

        The same as :func:`artist_key` with this table: ``"아이유"`` and ``"아이유 (IU)"`` give
        the artist part of the keys the parser makes for that artist's songs.
        """
        return artist_key(name, self)

    def copy(self) -> AliasTable:
        table = AliasTable()
        table._claims = {alias: dict(names) for alias, names in self._claims.items()}
        table._saved = dict(self._saved)
        return table

    def __len__(self) -> int:
        """The number of aliases (names that map to a different canonical name)."""
        return sum(1 for alias, artist in self.mapping().items() if alias != artist)

    def to_frame(self) -> pd.DataFrame:
        """Columns ``alias`` and ``artist`` (both key forms), one row per non-canonical name."""
        import pandas as pd

        rows = sorted(
            (alias, artist) for alias, artist in self.mapping().items() if alias != artist
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
            alias_name, artist_name = normalize_name(str(alias)), normalize_name(str(artist))
            if alias_name and artist_name and alias_name != artist_name:
                table._saved[alias_name] = artist_name
        return table

    def mapping(self) -> Mapping[str, str]:
        """Every grouped name (key form) -> its group's canonical name; read-only for callers.

        Resolved once after the last observation and cached; names without aliases are absent.
        """
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


def resolve_artist_key(
    artist: ArtistSide, aliases: Mapping[str, str] | None, pairs: tuple[tuple[str, str], ...]
) -> str:
    """The artist part of a key for a side already read; ``aliases`` is a table's
    :meth:`AliasTable.mapping`, and without one the aliases written alongside (``pairs``, from
    the whole song string) are used. A list of artists keys as the set of its canonical names
    (:func:`~segue.data.song_text.artist_list_key`), whatever order and separators it uses."""
    if aliases is None:
        if not pairs:
            aliases = {}
        else:
            table = AliasTable()
            table.add_pairs(pairs)
            aliases = table.mapping()
    whole = aliases.get(artist.name)
    if whole is not None:
        return whole
    if len(artist.components) < 2:
        return artist.name
    return artist_list_key(aliases.get(component, component) for component in artist.components)


def artist_key(written: str, aliases: AliasTable | None = None) -> str:
    """The artist part of the song key the parser gives a song by ``written``.

    ``written`` is an artist as a song string or an editor writes it (``"아이유 (IU)"``,
    ``"IU feat. X"``, ``"The Beatles"``); it is read like the artist side of a song string, so
    a ban list line or a search for an artist matches the keys of that artist's songs. Without
    a table the aliases written in brackets are used; "" when no name is left.
    """
    text = clean_field(written).strip(EDGE_JUNK)
    side = read_artist_side(text) if text else NO_ARTIST
    return resolve_artist_key(side, aliases.mapping() if aliases is not None else None, side.pairs)
