"""An ingested dataset on disk, and the one reader and writer of its layout.

Layout of a dataset directory::

    items.parquet         item vocabulary: item (int index, 0..n-1), key (str, canonical id),
                          artist (str, "" when none), title (str), count (int, kept interactions),
                          optional genres (str, "|"-separated; ratings datasets)
    interactions.parquet  sequence (str: playlist or user id), item (int), position (int, order
                          inside the sequence), timestamp (int64 seconds or null), rating (float or null)
    aliases.parquet       playlists only: alias (str, normalised artist name) -> artist (str, canonical)
    dataset.json          kind ("playlists" | "ratings"), counts before/after every rule, fingerprint
    rejected.jsonl        every dropped or unreadable record: source, location, reason
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from segue.data.interactions import Interactions

DatasetKind = Literal["playlists", "ratings"]
ITEM_COLUMNS = ["item", "key", "artist", "title", "count"]
OPTIONAL_ITEM_COLUMNS = ["genres"]
INTERACTION_COLUMNS = ["sequence", "item", "position", "timestamp", "rating"]


class DatasetError(ValueError):
    """A dataset directory is missing or does not have the expected layout."""


@dataclass(frozen=True)
class ItemTexts:
    """The text columns of an items frame as lists, in item order (index ``i`` is item ``i``)."""

    keys: list[str]
    artists: list[str]  # "" when the item has no artist
    titles: list[str]  # "" when the item has no title


def item_texts(items: pd.DataFrame) -> ItemTexts:
    """Key, artist and title of every item of an items frame (see the layout above), sorted by
    item index; a missing artist or title becomes ""."""
    frame = items.sort_values("item", kind="stable")
    return ItemTexts(
        keys=frame["key"].astype(str).tolist(),
        artists=frame["artist"].fillna("").astype(str).tolist(),
        titles=frame["title"].fillna("").astype(str).tolist(),
    )


def fingerprint_frames(*frames: pd.DataFrame) -> str:
    """A content hash of the frames, independent of file format and write time."""
    digest = hashlib.sha256()
    for frame in frames:
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(hashed.tobytes())
        digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Dataset:
    """Items, interactions and the manifest of one ingested dataset."""

    directory: Path
    kind: DatasetKind
    items: pd.DataFrame
    interactions: pd.DataFrame
    manifest: dict[str, Any]
    aliases: pd.DataFrame | None = None

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    def sequences(self, order_by: Literal["position", "timestamp"] = "position") -> Interactions:
        """One ordered history per playlist or user, ordered by position or by timestamp."""
        frame = self.interactions
        keys = (
            ["sequence", order_by, "position"]
            if order_by == "timestamp"
            else ["sequence", "position"]
        )
        frame = frame.sort_values(keys, kind="stable")
        grouped = frame.groupby("sequence", sort=False)["item"]
        ids = list(grouped.groups.keys())
        values = frame["item"].to_numpy(dtype=np.int64)
        sizes = grouped.size().to_numpy()
        sequences = np.split(values, np.cumsum(sizes)[:-1]) if len(values) else []
        return Interactions([np.asarray(s) for s in sequences], self.n_items, [str(i) for i in ids])

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        root = Path(directory)
        manifest_path = root / "dataset.json"
        if not manifest_path.exists():
            raise DatasetError(
                f"{root}: not a Segue dataset (no dataset.json); create one with `segue ingest`"
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        items = pd.read_parquet(root / "items.parquet")
        interactions = pd.read_parquet(root / "interactions.parquet")
        aliases_path = root / "aliases.parquet"
        aliases = pd.read_parquet(aliases_path) if aliases_path.exists() else None
        missing = set(ITEM_COLUMNS) - set(items.columns) | set(INTERACTION_COLUMNS) - set(
            interactions.columns
        )
        if missing:
            raise DatasetError(f"{root}: dataset files lack columns {sorted(missing)}")
        return cls(root, manifest["kind"], items, interactions, manifest, aliases)


def write_dataset(
    directory: str | Path,
    kind: DatasetKind,
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    manifest: dict[str, Any],
    aliases: pd.DataFrame | None = None,
) -> Dataset:
    """Write the layout above; the fingerprint is computed here from the content."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    extra = [column for column in OPTIONAL_ITEM_COLUMNS if column in items.columns]
    items = items[ITEM_COLUMNS + extra].reset_index(drop=True)
    interactions = interactions[INTERACTION_COLUMNS].reset_index(drop=True)
    if len(items) and not np.array_equal(items["item"].to_numpy(), np.arange(len(items))):
        raise DatasetError("items.item must be 0..n-1 in order")
    manifest = {**manifest, "kind": kind, "fingerprint": fingerprint_frames(items, interactions)}
    items.to_parquet(root / "items.parquet", index=False)
    interactions.to_parquet(root / "interactions.parquet", index=False)
    if aliases is not None:
        aliases.to_parquet(root / "aliases.parquet", index=False)
    else:
        (root / "aliases.parquet").unlink(missing_ok=True)  # left by an earlier playlists dataset
    (root / "dataset.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return Dataset(root, kind, items, interactions, manifest, aliases)
