"""The event log: every served list, its items, and the feedback on them, as Parquet parts.

    <dir>/lists/date=YYYY-MM-DD/hour=HH/part-<pid>-<uuid8>.parquet     one row per served list
    <dir>/items/date=YYYY-MM-DD/hour=HH/part-<pid>-<uuid8>.parquet     one row per served item
    <dir>/feedback/date=YYYY-MM-DD/hour=HH/part-<pid>-<uuid8>.parquet  one row per feedback event

Parquet because the layout is columnar and pandas (or any data frame library) reads a table of
it in one call; parts by day and hour so a report over a window opens only that window's files.

Requests never wait on disk: the serving path hands a cheap ``ServedList`` (references to what
the response already holds) to ``EventWriter.submit_list``, which appends it to a bounded queue;
one writer thread turns queued events into rows and writes a part every ``flush_events`` events
or ``flush_seconds``. A full queue drops the event and counts it; a write that fails (full disk,
unwritable directory) drops its events, counts them and logs, and serving goes on. Each part is
written under a hidden temporary name and renamed, so readers never see half a part; each
process names its parts by its pid, so several workers write side by side and readers take the
union. ``close`` drains the queue and writes everything before the process ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

TIMESTAMP = pa.timestamp("ms", tz="UTC")
LIST_SCHEMA = pa.schema(
    [
        ("recommendation_id", pa.string()),
        ("served_at", TIMESTAMP),
        ("task", pa.string()),
        ("route", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("algorithm", pa.string()),
        ("k", pa.int32()),
        ("user_id", pa.string()),
        ("input_size", pa.int32()),
        ("unmatched", pa.int32()),
        ("fallback", pa.string()),
        ("n_items", pa.int32()),
        ("removed_ban_list", pa.int32()),
        ("removed_excluded", pa.int32()),
        ("removed_seen", pa.int32()),
        ("removed_artist_cap", pa.int32()),
        ("latency_ms", pa.float64()),
        ("input_items", pa.list_(pa.string())),
        ("known_user", pa.bool_()),
        ("excluded_items", pa.list_(pa.string())),
    ]
)
ITEM_SCHEMA = pa.schema(
    [
        ("recommendation_id", pa.string()),
        ("served_at", TIMESTAMP),
        ("task", pa.string()),
        ("model_version", pa.string()),
        ("user_id", pa.string()),
        ("item", pa.string()),
        ("artist", pa.string()),
        ("score", pa.float64()),
        ("position", pa.int32()),
    ]
)
FEEDBACK_SCHEMA = pa.schema(
    [
        ("recommendation_id", pa.string()),
        ("item", pa.string()),
        ("type", pa.string()),
        ("position", pa.int32()),
        ("timestamp", TIMESTAMP),
        ("received_at", TIMESTAMP),
    ]
)
SCHEMAS = {"lists": LIST_SCHEMA, "items": ITEM_SCHEMA, "feedback": FEEDBACK_SCHEMA}
# Columns added after the first parts were written: a part without one reads it as this value.
LATER_COLUMNS: dict[str, dict[str, Any]] = {"lists": {"excluded_items": []}}
# The column each table's window (and partition) is read from.
TIME_COLUMNS = {"lists": "served_at", "items": "served_at", "feedback": "received_at"}
FEEDBACK_TYPES = ("impression", "click", "play", "skip", "accept")
# A failing disk is logged at most this often; every dropped event is counted either way.
FAILURE_LOG_SECONDS = 60.0


class RemovedCounts(Protocol):
    """What each post-processing rule took out of a list (``segue.ranking``'s ``RemovedItems``)."""

    seen: int
    excluded: int
    ban_list: int
    artist_cap: int


class ScoredEntry(Protocol):
    """One served item: its catalogue index and the model's score."""

    item: int
    score: float


@dataclass(slots=True)
class ServedList:
    """One served list as the serving path hands it over: what the response already holds, by
    reference. The writer thread turns it into a ``lists`` row and one ``items`` row per item."""

    recommendation_id: str
    served_at: float  # Unix seconds
    task: str
    route: str  # the route template, e.g. "/v1/next-songs"
    model_name: str
    model_version: str
    algorithm: str
    k: int
    user_id: str | None
    input_size: int  # songs or history items sent, or the known user's history length
    unmatched: int
    fallback: str | None
    removed: RemovedCounts
    latency_ms: float
    input_items: Sequence[int]  # catalogue indices of the matched inputs
    items: Sequence[ScoredEntry]
    keys: Sequence[str]  # the serving catalogue's keys and artists, by item index
    artists: Sequence[str]
    known_user: bool | None = None
    excluded_items: Sequence[int] = ()  # catalogue indices of the matched ``exclude`` items


class FeedbackEvent(NamedTuple):
    """One feedback event of ``POST /v1/feedback``."""

    recommendation_id: str
    item: str
    type: str
    position: int | None = None
    timestamp: float | None = None  # Unix seconds by the client's clock; None = when received


class DropCounter(Protocol):
    """Where the writer reports (``ServingMetrics`` in a server)."""

    def record_dropped_events(self, count: int) -> None: ...

    def set_event_queue_depth(self, depth: int) -> None: ...


@dataclass(frozen=True)
class _FeedbackBatch:
    received_at: float
    events: Sequence[FeedbackEvent]


# The writer thread turns served lists into Arrow rows as soon as this many wait, a part being
# written only once ``flush_events`` are built: built all at once, a part's rows took a core
# for tens of milliseconds, and the requests served meanwhile waited (see ``EventWriter``).
BUILD_CHUNK_LISTS = 128


class EventWriter:
    """A bounded queue of events drained by one thread into Parquet parts under ``directory``.

    ``submit_*`` never blocks and never raises: it returns False when the event was dropped
    (the queue is full, or the writer is closed), and the drop is counted. The thread builds
    the rows of every ``BUILD_CHUNK_LISTS`` lists as they come, and writes a part once
    ``flush_events`` events are built or ``flush_seconds`` after the last part, whichever is
    first: the CPU it takes is spread over the traffic instead of coming in bursts.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        queue_size: int = 10000,
        flush_events: int = 1000,
        flush_seconds: float = 5.0,
        metrics: DropCounter | None = None,
        hash_user_ids: bool = False,
    ) -> None:
        if queue_size < 1 or flush_events < 1 or flush_seconds <= 0:
            raise ValueError("queue_size and flush_events must be >= 1, flush_seconds > 0")
        self.directory = Path(directory)
        self.queue_size = queue_size
        self.flush_events = flush_events
        self.flush_seconds = flush_seconds
        self.hash_user_ids = hash_user_ids
        self.dropped = 0
        self._metrics = metrics
        # A deque: appending and taking from opposite ends is thread-safe without a lock.
        self._pending: deque[ServedList | _FeedbackBatch] = deque()
        self._wake_at = min(BUILD_CHUNK_LISTS, flush_events)
        # Taken from the queue, not yet in a part: lists as Arrow rows, and feedback batches.
        self._built: dict[str, list[pa.Table]] = {"lists": [], "items": []}
        self._built_lists = 0
        self._built_feedback: list[_FeedbackBatch] = []
        # The catalogues' keys and artists as Arrow arrays, kept between chunks.
        self._keys, self._artists = CatalogueTexts(), CatalogueTexts()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._prefix = f"part-{os.getpid()}-"
        self._last_failure_log = -FAILURE_LOG_SECONDS

    @property
    def queue_depth(self) -> int:
        """Served lists and feedback batches waiting for the writer thread."""
        return len(self._pending)

    def start(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="segue-event-log", daemon=True)
            self._thread.start()

    def submit_list(self, served: ServedList) -> bool:
        """Queue one served list; False (and counted) when it was dropped."""
        return self._submit(served, 1)

    def submit_feedback(
        self, events: Sequence[FeedbackEvent], received_at: float | None = None
    ) -> bool:
        """Queue a batch of feedback events; False (and each counted) when it was dropped."""
        if not events:
            return True
        batch = _FeedbackBatch(time.time() if received_at is None else received_at, events)
        return self._submit(batch, len(events))

    def close(self) -> None:
        """Write every queued event, then stop the thread; later submissions are dropped."""
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._wake.set()
            thread.join()
        else:
            self._flush()

    def _submit(self, entry: ServedList | _FeedbackBatch, events: int) -> bool:
        pending = self._pending
        if self._closed or len(pending) >= self.queue_size:
            self._drop(events)
            return False
        pending.append(entry)
        if len(pending) >= self._wake_at:
            self._wake.set()
        return True

    def _drop(self, events: int) -> None:
        self.dropped += events
        if self._metrics is not None:
            self._metrics.record_dropped_events(events)

    def _run(self) -> None:
        written_at = time.monotonic()
        while True:
            due = written_at + self.flush_seconds
            self._wake.wait(max(due - time.monotonic(), 0.0))
            self._wake.clear()
            closing = self._closed
            self._build()
            built = self._built_lists + sum(len(batch.events) for batch in self._built_feedback)
            if closing or built >= self.flush_events or time.monotonic() >= due:
                self._write_built()
                written_at = time.monotonic()
            if closing:
                self._flush()  # anything submitted while the last part was written
                return

    def _flush(self) -> None:
        """Build and write every event queued so far."""
        self._build()
        self._write_built()

    def _build(self) -> None:
        """Take every queued event: lists become Arrow rows, feedback batches wait as they are."""
        pending = self._pending
        if self._metrics is not None:
            self._metrics.set_event_queue_depth(len(pending))
        entries = [pending.popleft() for _ in range(len(pending))]
        lists = [entry for entry in entries if isinstance(entry, ServedList)]
        self._built_feedback += [entry for entry in entries if isinstance(entry, _FeedbackBatch)]
        for start in range(0, len(lists), BUILD_CHUNK_LISTS):
            # Turning Python rows into Arrow columns holds the GIL for the whole call: a chunk
            # at a time, with the GIL handed back in between, nobody waits on a whole part.
            chunk = lists[start : start + BUILD_CHUNK_LISTS]
            self._guarded(len(chunk), lambda chunk=chunk: self._build_lists(chunk))
            time.sleep(0)
        if self._metrics is not None:
            self._metrics.set_event_queue_depth(len(pending))

    def _build_lists(self, lists: list[ServedList]) -> None:
        # Both tables before either is kept: a chunk that fails is dropped whole.
        hashed = self.hash_user_ids
        rows = (
            list_table(lists, hashed, self._keys),
            item_table(lists, hashed, self._keys, self._artists),
        )
        self._built["lists"].append(rows[0])
        self._built["items"].append(rows[1])
        self._built_lists += len(lists)

    def _write_built(self) -> None:
        """Write the built lists and the waiting feedback as parts, and forget them."""
        built, lists = self._built, self._built_lists
        feedback = self._built_feedback
        self._built, self._built_lists = {"lists": [], "items": []}, 0
        self._built_feedback = []
        if lists:
            self._guarded(lists, lambda: self._write_tables(built))
        if feedback:
            self._guarded(
                sum(len(batch.events) for batch in feedback),
                lambda: self._write_table("feedback", feedback_table(feedback)),
            )

    def _write_tables(self, built: dict[str, list[pa.Table]]) -> None:
        for name, tables in built.items():
            self._write_table(name, pa.concat_tables(tables))

    def _guarded(self, events: int, action: Callable[[], Any]) -> None:
        """Run ``action``; on any failure drop its ``events`` (logged at most once a minute)."""
        try:
            action()
        except Exception as error:  # a full disk or an unwritable directory must not stop serving
            self._drop(events)
            now = time.monotonic()
            if now - self._last_failure_log >= FAILURE_LOG_SECONDS:
                self._last_failure_log = now
                logger.error(
                    "event log: dropped %d events, cannot write under %s: %s",
                    events,
                    self.directory,
                    error,
                )

    def _write_table(self, name: str, table: pa.Table) -> None:
        times = table.column(TIME_COLUMNS[name]).cast(pa.int64()).to_numpy() // 3_600_000
        for hour in sorted(set(times.tolist())):
            part = table if times.min() == times.max() else table.filter(pa.array(times == hour))
            stamp = datetime.fromtimestamp(hour * 3600, UTC)
            folder = self.directory / name / f"date={stamp:%Y-%m-%d}" / f"hour={stamp:%H}"
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / f"{self._prefix}{uuid.uuid4().hex[:8]}.parquet"
            temporary = folder / f".{final.name}.tmp"
            try:
                pq.write_table(part, temporary)
                os.replace(temporary, final)
            finally:
                with contextlib.suppress(OSError):
                    temporary.unlink(missing_ok=True)


def hash_user_id(user_id: str) -> str:
    """The logged form of a user id when ``monitoring.hash_user_ids`` is on."""
    return "sha256:" + hashlib.sha256(user_id.encode()).hexdigest()[:16]


def _user(user_id: str | None, hashed: bool) -> str | None:
    if user_id is None or not hashed:
        return user_id
    return hash_user_id(user_id)


def _milliseconds(seconds: Iterable[float]) -> pa.Array:
    return pa.array([round(value * 1000) for value in seconds], pa.int64()).cast(TIMESTAMP)


class CatalogueTexts:
    """Catalogue texts (keys or artists) as an Arrow array, built once per catalogue the writer
    sees: the texts of a chunk's items are then taken in one compiled call, instead of a Python
    lookup and conversion per item. The last few catalogues are kept (a hot reload brings a new
    one; a chunk may straddle it)."""

    KEPT = 4

    def __init__(self) -> None:
        self._arrays: dict[int, tuple[Sequence[str], pa.Array]] = {}

    def take(self, runs: list[tuple[Sequence[str], int]], indices: np.ndarray) -> pa.Array:
        """The texts of ``indices``, the first items of each run from that run's catalogue."""
        chunks, start = [], 0
        for texts, count in runs:
            chunk = pa.array(indices[start : start + count], pa.int64())
            chunks.append(self._array(texts).take(chunk))
            start += count
        if not chunks:
            return pa.array([], pa.string())
        return chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)

    def _array(self, texts: Sequence[str]) -> pa.Array:
        kept = self._arrays.get(id(texts))
        if kept is not None and kept[0] is texts:
            return kept[1]
        array = pa.array(texts, pa.string())
        if len(self._arrays) >= self.KEPT:
            del self._arrays[next(iter(self._arrays))]
        self._arrays[id(texts)] = (texts, array)  # the reference keeps the id from being reused
        return array


def _runs(
    lists: Sequence[ServedList],
    catalogue: Callable[[ServedList], Sequence[str]],
    counts: np.ndarray,
) -> list[tuple[Sequence[str], int]]:
    """The catalogue (``catalogue(list)``) of each run of consecutive lists that share one, with
    the run's number of items (``counts``, per list): usually one run, a hot reload makes two."""
    if not lists:
        return []
    first = catalogue(lists[0])
    if all(catalogue(served) is first for served in lists):
        return [(first, int(counts.sum()))]
    runs: list[tuple[Sequence[str], int]] = []
    for served, count in zip(lists, counts.tolist(), strict=True):
        texts = catalogue(served)
        if runs and runs[-1][0] is texts:
            runs[-1] = (texts, runs[-1][1] + count)
        else:
            runs.append((texts, count))
    return runs


def _text_lists(
    lists: Sequence[ServedList],
    column: Callable[[ServedList], Sequence[int]],
    texts: CatalogueTexts,
) -> pa.Array:
    """A list-of-strings column: each list's items (``column(list)``) as catalogue keys."""
    values = [column(served) for served in lists]
    counts = np.fromiter(map(len, values), np.int64, len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    indices = np.concatenate(values) if values else np.zeros(0)
    keys = texts.take(_runs(lists, lambda s: s.keys, counts), indices.astype(np.int64))
    return pa.ListArray.from_arrays(pa.array(offsets), keys)


def list_table(
    lists: Sequence[ServedList], hash_user_ids: bool = False, texts: CatalogueTexts | None = None
) -> pa.Table:
    """The ``lists`` rows of served lists (``texts``: the writer's kept catalogue keys)."""
    texts = CatalogueTexts() if texts is None else texts
    return pa.table(
        {
            "recommendation_id": [s.recommendation_id for s in lists],
            "served_at": _milliseconds(s.served_at for s in lists),
            "task": [s.task for s in lists],
            "route": [s.route for s in lists],
            "model_name": [s.model_name for s in lists],
            "model_version": [s.model_version for s in lists],
            "algorithm": [s.algorithm for s in lists],
            "k": [s.k for s in lists],
            "user_id": [_user(s.user_id, hash_user_ids) for s in lists],
            "input_size": [s.input_size for s in lists],
            "unmatched": [s.unmatched for s in lists],
            "fallback": [s.fallback for s in lists],
            "n_items": [len(s.items) for s in lists],
            "removed_ban_list": [s.removed.ban_list for s in lists],
            "removed_excluded": [s.removed.excluded for s in lists],
            "removed_seen": [s.removed.seen for s in lists],
            "removed_artist_cap": [s.removed.artist_cap for s in lists],
            "latency_ms": [s.latency_ms for s in lists],
            "input_items": _text_lists(lists, lambda s: s.input_items, texts),
            "known_user": [s.known_user for s in lists],
            "excluded_items": _text_lists(lists, lambda s: s.excluded_items, texts),
        },
        schema=LIST_SCHEMA,
    )


def item_table(
    lists: Sequence[ServedList],
    hash_user_ids: bool = False,
    keys: CatalogueTexts | None = None,
    artists: CatalogueTexts | None = None,
) -> pa.Table:
    """The ``items`` rows of served lists: one per item, position 1 first (``keys``,
    ``artists``: the writer's kept catalogue texts)."""
    keys = CatalogueTexts() if keys is None else keys
    artists = CatalogueTexts() if artists is None else artists
    counts = np.fromiter((len(s.items) for s in lists), np.int64, len(lists))
    items = np.array([e.item for s in lists for e in s.items], dtype=np.int64)
    # Each item row's list, for the columns that repeat the list's values.
    of_list = pa.array(np.repeat(np.arange(len(lists)), counts))
    starts = np.repeat(np.cumsum(counts) - counts, counts)

    def repeat(values: Iterable[Any], kind: pa.DataType) -> pa.Array:
        return pa.array(list(values), kind).take(of_list)

    return pa.table(
        {
            "recommendation_id": repeat((s.recommendation_id for s in lists), pa.string()),
            "served_at": _milliseconds(s.served_at for s in lists).take(of_list),
            "task": repeat((s.task for s in lists), pa.string()),
            "model_version": repeat((s.model_version for s in lists), pa.string()),
            "user_id": repeat((_user(s.user_id, hash_user_ids) for s in lists), pa.string()),
            "item": keys.take(_runs(lists, lambda s: s.keys, counts), items),
            "artist": artists.take(_runs(lists, lambda s: s.artists, counts), items),
            "score": [e.score for s in lists for e in s.items],
            "position": pa.array(np.arange(1, len(items) + 1) - starts, pa.int32()),
        },
        schema=ITEM_SCHEMA,
    )


def feedback_table(batches: Sequence[_FeedbackBatch]) -> pa.Table:
    """The ``feedback`` rows of feedback batches; a missing client time is the received time."""
    events = [(batch.received_at, event) for batch in batches for event in batch.events]
    return pa.table(
        {
            "recommendation_id": [e.recommendation_id for _, e in events],
            "item": [e.item for _, e in events],
            "type": [e.type for _, e in events],
            "position": [e.position for _, e in events],
            "timestamp": _milliseconds(
                received if e.timestamp is None else e.timestamp for received, e in events
            ),
            "received_at": _milliseconds(received for received, _ in events),
        },
        schema=FEEDBACK_SCHEMA,
    )


@dataclass
class EventLog:
    """The tables of an event log over a window, and the parts that could not be read."""

    lists: pd.DataFrame
    items: pd.DataFrame
    feedback: pd.DataFrame
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def read_event_log(
    directory: Path | str, since: datetime | None = None, until: datetime | None = None
) -> EventLog:
    """Every part under ``directory`` (all processes), rows with time in ``[since, until)``.

    Naive times are read as UTC. A part that cannot be read (corrupt, truncated, another schema)
    is left out and listed in ``skipped`` with its path and the reason; this never raises for a
    bad file, and a missing directory is an empty log.
    """
    low, high = _utc(since), _utc(until)
    skipped: list[tuple[str, str]] = []
    frames = {
        name: _read_table(Path(directory) / name, name, low, high, skipped) for name in SCHEMAS
    }
    return EventLog(frames["lists"], frames["items"], frames["feedback"], skipped)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _read_table(
    folder: Path,
    name: str,
    since: datetime | None,
    until: datetime | None,
    skipped: list[tuple[str, str]],
) -> pd.DataFrame:
    schema = SCHEMAS[name]
    tables = []
    for path in sorted(_parts(folder, since, until)):
        try:
            table = _with_later_columns(pq.read_table(path, partitioning=None), name)
            tables.append(table.select(schema.names).cast(schema))
        except Exception as error:  # any unreadable part is reported, never fatal
            skipped.append((str(path), f"{type(error).__name__}: {error}"))
            logger.warning("event log: skipped %s: %s", path, error)
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    frame = table.to_pandas()
    times = frame[TIME_COLUMNS[name]]
    keep = pd.Series(True, index=frame.index)
    if since is not None:
        keep &= times >= pd.Timestamp(since)
    if until is not None:
        keep &= times < pd.Timestamp(until)
    return frame[keep].reset_index(drop=True)


def _with_later_columns(table: pa.Table, name: str) -> pa.Table:
    """``table`` with each column added to the layout after it was written, at its default."""
    for column, default in LATER_COLUMNS.get(name, {}).items():
        if column not in table.column_names:
            spec = SCHEMAS[name].field(column)
            table = table.append_column(spec, pa.array([default] * table.num_rows, spec.type))
    return table


def _parts(folder: Path, since: datetime | None, until: datetime | None) -> Iterable[Path]:
    """The visible part files of one table whose hour overlaps the window."""
    if not folder.is_dir():
        return
    for day in folder.glob("date=*"):
        for hour in day.glob("hour=*"):
            try:
                start = datetime.strptime(f"{day.name[5:]} {hour.name[5:]}", "%Y-%m-%d %H").replace(
                    tzinfo=UTC
                )
            except ValueError:
                continue  # not a partition of this layout
            if since is not None and start.timestamp() + 3600 <= since.timestamp():
                continue
            if until is not None and start >= until:
                continue
            for part in hour.glob("*.parquet"):
                if not part.name.startswith("."):
                    yield part
