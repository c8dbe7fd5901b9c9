"""Precomputed top-K lists: the table ``segue batch recommend`` writes and the server reads.

A table is a directory of Parquet files, one row per list entry, and a manifest written last (a
directory without one is a table still being written, and is never read)::

    _manifest.json   task, registered name and version, depth k, the post-processing rules and
                     the ban list (as a digest) the lists were ranked under, lists, rows, engine
    *.parquet        user (str: the user, or the playlist id for next-song), rank (int32, 1 =
                     best), item (str: the catalogue key), score (float64: the model's score, as
                     the live answer gives it), fallback (str or null: as the live answer's),
                     registered_name (str), version (str)

The server (``serving.precomputed_dir``) answers a known user's list from the table when the
table holds lists of the very version it serves, ranked under the rules it serves with, and k is
at most the table's depth; anything else is scored live. Without a re-rank a list is
prefix-consistent (the best k of a list of depth K are its first k), so every k <= K is answered;
with a re-rank the candidate pool depends on k, and only k = K is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segue.ranking.ban_list import ARTIST_PREFIX, BanList
from segue.ranking.postprocess import PostProcessConfig, RankedItem

logger = logging.getLogger(__name__)

MANIFEST_FILE = "_manifest.json"
TABLE_FORMAT = 1
TABLE_SCHEMA = pa.schema(
    [
        pa.field("user", pa.string(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("item", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
        pa.field("fallback", pa.string()),
        pa.field("registered_name", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
    ]
)
# The one route a table answers: a known user's list (GET /v1/users/{id}/recommendations).
SERVED_TASK = "user-items"


class PrecomputedError(ValueError):
    """A table directory that cannot be read: no manifest, a bad manifest, or unreadable lists."""


def ban_list_digest(ban_list: BanList) -> str:
    """A short fingerprint of a ban list's entries: equal lists give equal digests."""
    lines = sorted(ban_list.keys) + sorted(ARTIST_PREFIX + name for name in ban_list.artists)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class TableManifest:
    """What a table holds and how its lists were ranked."""

    task: str
    registered_name: str
    version: str
    algorithm: str
    k: int
    postprocess: PostProcessConfig
    ban_list_sha256: str
    lists: int
    rows: int
    engine: str
    created: str

    def to_json(self) -> str:
        body = {"format": TABLE_FORMAT, **asdict(self)}
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str) -> TableManifest:
        try:
            body = json.loads(text)
            if body.get("format") != TABLE_FORMAT:
                raise ValueError(f"format {body.get('format')!r} is not {TABLE_FORMAT}")
            rules = dict(body["postprocess"])
            return cls(
                task=str(body["task"]),
                registered_name=str(body["registered_name"]),
                version=str(body["version"]),
                algorithm=str(body["algorithm"]),
                k=int(body["k"]),
                postprocess=PostProcessConfig(
                    int(rules["max_per_artist"]), rules["rerank"], float(rules["rerank_weight"])
                ),
                ban_list_sha256=str(body["ban_list_sha256"]),
                lists=int(body["lists"]),
                rows=int(body["rows"]),
                engine=str(body["engine"]),
                created=str(body["created"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise PrecomputedError(f"{source}: not a table manifest: {error}") from error


def write_manifest(directory: Path, manifest: TableManifest) -> Path:
    path = directory / MANIFEST_FILE
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path


def read_manifest(directory: str | Path) -> TableManifest:
    path = Path(directory) / MANIFEST_FILE
    if not path.is_file():
        raise PrecomputedError(f"{directory}: no {MANIFEST_FILE} (not a finished batch table)")
    return TableManifest.from_json(path.read_text(encoding="utf-8"), str(path))


def lists_table(
    users: Sequence[str],
    lists: Sequence[Sequence[tuple[str, float]]],
    fallbacks: Sequence[str | None],
    registered_name: str,
    version: str,
) -> pa.Table:
    """The rows of ``lists`` (``(item key, score)`` pairs, best first), one list per user."""
    lengths = [len(entries) for entries in lists]
    rows = sum(lengths)
    return pa.table(
        {
            "user": pa.array(np.repeat(np.asarray(users, dtype=object), lengths), pa.string()),
            "rank": pa.array(
                np.concatenate([np.arange(1, n + 1) for n in lengths]) if rows else [],
                pa.int32(),
            ),
            "item": pa.array([key for entries in lists for key, _ in entries], pa.string()),
            "score": pa.array([score for entries in lists for _, score in entries], pa.float64()),
            "fallback": pa.array(
                np.repeat(np.asarray(fallbacks, dtype=object), lengths), pa.string()
            ),
            "registered_name": pa.array([registered_name] * rows, pa.string()),
            "version": pa.array([version] * rows, pa.string()),
        },
        schema=TABLE_SCHEMA,
    )


def table_files(directory: str | Path) -> list[Path]:
    return sorted(Path(directory).glob("*.parquet"))


def read_lists(directory: str | Path) -> pd.DataFrame:
    """Every row of a table, sorted by user and rank."""
    files = table_files(directory)
    if not files:
        return TABLE_SCHEMA.empty_table().to_pandas()
    try:
        table = pa.concat_tables(pq.read_table(path, schema=TABLE_SCHEMA) for path in files)
    except (OSError, pa.ArrowException) as error:
        raise PrecomputedError(f"{directory}: cannot read its lists: {error}") from error
    frame = table.to_pandas()
    return frame.sort_values(["user", "rank"], kind="stable", ignore_index=True)


@dataclass(frozen=True)
class PrecomputedList:
    items: list[RankedItem]
    fallback: str | None


class PrecomputedLists:
    """A table loaded for one serving model: each user's list as catalogue indices and scores."""

    def __init__(self, manifest: TableManifest, frame: pd.DataFrame, keys: Sequence[str]) -> None:
        self.manifest = manifest
        self.depth = manifest.k
        items = pd.Index(np.asarray(keys, dtype=object)).get_indexer(frame["item"])
        if (items < 0).any():
            unknown = frame["item"][items < 0].iloc[0]
            raise PrecomputedError(f"item {unknown!r} of the table is not in the catalogue")
        users = frame["user"].to_numpy(dtype=object)
        first = np.ones(len(users), dtype=bool)
        first[1:] = users[1:] != users[:-1]
        starts = np.flatnonzero(first)
        stops = np.append(starts[1:], len(users)).astype(np.int64)
        expected = np.arange(len(users)) - np.repeat(starts, stops - starts) + 1
        if not np.array_equal(frame["rank"].to_numpy(), expected):
            raise PrecomputedError("ranks do not run 1, 2, ... within every user's list")
        self._spans = {
            str(users[start]): (int(start), int(stop))
            for start, stop in zip(starts, stops, strict=True)
        }
        fallbacks = frame["fallback"]
        self._fallbacks = {
            str(users[start]): str(fallbacks.iat[start])
            for start in starts
            if not pd.isna(fallbacks.iat[start])
        }
        self._items = items.astype(np.int64)
        self._scores = frame["score"].to_numpy(dtype=np.float64)
        self._ban_list_checked: tuple[BanList, bool] | None = None
        self._mismatch_logged = threading.Event()

    def __len__(self) -> int:
        return len(self._spans)

    def lookup(
        self, user: str, k: int, config: PostProcessConfig, ban_list: BanList
    ) -> PrecomputedList | None:
        """The user's first ``k`` entries, or None when the live list must be scored instead."""
        span = self._spans.get(user)
        if span is None or not 0 < k <= self.depth:
            return None
        if config.reorders and k != self.depth:
            return None  # a re-rank's pool depends on k: only the table's own depth is the same
        if not self._same_rules(config, ban_list):
            return None
        start, stop = span
        stop = min(stop, start + k)
        items = [
            RankedItem(int(item), float(score))
            for item, score in zip(self._items[start:stop], self._scores[start:stop], strict=True)
        ]
        return PrecomputedList(items, self._fallbacks.get(user))

    def _same_rules(self, config: PostProcessConfig, ban_list: BanList) -> bool:
        checked = self._ban_list_checked
        if checked is None or checked[0] is not ban_list:
            # One digest per ban list version: the file's list object changes only on reload.
            checked = (ban_list, ban_list_digest(ban_list) == self.manifest.ban_list_sha256)
            self._ban_list_checked = checked
        same = checked[1] and config == self.manifest.postprocess
        if not same and not self._mismatch_logged.is_set():
            self._mismatch_logged.set()
            logger.warning(
                "precomputed lists of %s version %s were ranked under other rules (ban list or "
                "serving.max_per_artist/rerank changed since): answering live",
                self.manifest.registered_name,
                self.manifest.version,
            )
        return same


def load_precomputed(
    directory: Path | None, task: str, registered_name: str, version: str, keys: Sequence[str]
) -> PrecomputedLists | None:
    """The table at ``directory`` for the model serving ``task``, or None (and the reason logged)
    when there is none or it does not belong to that very version. Never raises: a table only
    ever saves scoring."""
    if directory is None or task != SERVED_TASK:
        return None
    try:
        manifest = read_manifest(directory)
        ignored = _mismatch(manifest, registered_name, version)
        if ignored is not None:
            logger.warning(
                "serving.precomputed_dir %s ignored: %s; every list is scored live",
                directory,
                ignored,
            )
            return None
        table = PrecomputedLists(manifest, read_lists(directory), keys)
    except (PrecomputedError, OSError, ValueError) as error:
        logger.warning(
            "serving.precomputed_dir %s ignored: %s; every list is scored live", directory, error
        )
        return None
    logger.info(
        "%s version %s: %d users answered from the precomputed lists in %s (k <= %d)",
        registered_name,
        version,
        len(table),
        directory,
        table.depth,
    )
    return table


def _mismatch(manifest: TableManifest, registered_name: str, version: str) -> str | None:
    if manifest.task != SERVED_TASK:
        return f"it holds {manifest.task} lists; only {SERVED_TASK} lists are served from a table"
    if (manifest.registered_name, manifest.version) != (registered_name, version):
        return (
            f"it holds lists of {manifest.registered_name} version {manifest.version}, "
            f"the server loaded {registered_name} version {version}"
        )
    return None
