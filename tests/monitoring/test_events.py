"""The event log on real files: what a served list and feedback become, a bounded queue that
drops and counts, a log directory that cannot be written, and parts that cannot be read."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segue.monitoring.events import (
    EventWriter,
    FeedbackEvent,
    ServedList,
    hash_user_id,
    read_event_log,
)
from segue.ranking.postprocess import RankedItem, RemovedItems

KEYS = ["iu|palette", "iu|blueming", "bts|butter", "coldplay|yellow"]
ARTISTS = ["IU", "IU", "BTS", "Coldplay"]
SERVED_AT = datetime(2026, 3, 1, 13, 59, 59, 500000, tzinfo=UTC).timestamp()


class Drops:
    """Stands in for the server's metrics."""

    def __init__(self) -> None:
        self.dropped = 0
        self.depths: list[int] = []

    def record_dropped_events(self, count: int) -> None:
        self.dropped += count

    def set_event_queue_depth(self, depth: int) -> None:
        self.depths.append(depth)


def served(recommendation_id: str = "r1", served_at: float = SERVED_AT, **changes) -> ServedList:
    fields = dict(
        recommendation_id=recommendation_id,
        served_at=served_at,
        task="next-song",
        route="/v1/next-songs",
        model_name="dev.segue-next-song",
        model_version="3",
        algorithm="item-knn",
        k=2,
        user_id=None,
        input_size=3,
        unmatched=1,
        fallback=None,
        removed=RemovedItems(seen=2, excluded=0, ban_list=1, artist_cap=0),
        latency_ms=1.5,
        input_items=[0, 1],
        items=[RankedItem(3, 0.75), RankedItem(2, 0.5)],
        keys=KEYS,
        artists=ARTISTS,
        known_user=None,
        excluded_items=[1, 2],
    )
    fields.update(changes)
    return ServedList(**fields)


def test_a_served_list_becomes_one_list_row_and_one_row_per_item(tmp_path: Path) -> None:
    writer = EventWriter(tmp_path, flush_seconds=60)
    writer.start()
    assert writer.submit_list(served())
    writer.close()

    parts = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert [p.rsplit("/", 1)[0] for p in parts] == [
        "items/date=2026-03-01/hour=13",
        "lists/date=2026-03-01/hour=13",
    ]
    log = read_event_log(tmp_path)
    assert log.skipped == []
    [row] = log.lists.to_dict("records")
    row["input_items"] = list(row["input_items"])
    row["excluded_items"] = list(row["excluded_items"])
    assert pd.isna(row.pop("user_id")) and pd.isna(row.pop("fallback"))  # missing strings
    assert row["served_at"] == pd.Timestamp("2026-03-01 13:59:59.500", tz="UTC")
    assert {key: row[key] for key in row if key != "served_at"} == {
        "recommendation_id": "r1",
        "task": "next-song",
        "route": "/v1/next-songs",
        "model_name": "dev.segue-next-song",
        "model_version": "3",
        "algorithm": "item-knn",
        "k": 2,
        "input_size": 3,
        "unmatched": 1,
        "n_items": 2,
        "removed_ban_list": 1,
        "removed_excluded": 0,
        "removed_seen": 2,
        "removed_artist_cap": 0,
        "latency_ms": 1.5,
        "input_items": ["iu|palette", "iu|blueming"],
        "known_user": None,
        "excluded_items": ["iu|blueming", "bts|butter"],
    }
    items = log.items[["recommendation_id", "item", "artist", "score", "position"]]
    assert items.to_dict("records") == [
        {"recommendation_id": "r1", "item": "coldplay|yellow", "artist": "Coldplay", "score": 0.75,
         "position": 1},
        {"recommendation_id": "r1", "item": "bts|butter", "artist": "BTS", "score": 0.5,
         "position": 2},
    ]  # fmt: skip
    assert log.feedback.empty and list(log.feedback.columns) == [
        "recommendation_id",
        "item",
        "type",
        "position",
        "timestamp",
        "received_at",
    ]


def test_lists_of_two_catalogues_in_one_part_name_each_items_from_its_own(tmp_path: Path) -> None:
    # A hot reload between two lists: the same indices name other songs in the new catalogue.
    reloaded_keys, reloaded_artists = KEYS[::-1], ARTISTS[::-1]
    writer = EventWriter(tmp_path, flush_seconds=60)
    writer.start()
    for number, catalogue in enumerate([KEYS, reloaded_keys, reloaded_keys, KEYS]):
        artists = ARTISTS if catalogue is KEYS else reloaded_artists
        items = [] if number == 2 else [RankedItem(3, 0.75), RankedItem(2, 0.5)]
        assert writer.submit_list(
            served(f"r{number}", keys=catalogue, artists=artists, items=items, input_items=[0])
        )
    writer.close()
    log = read_event_log(tmp_path)
    lists = log.lists.sort_values("recommendation_id")
    assert [list(keys) for keys in lists["input_items"]] == [
        ["iu|palette"],
        ["coldplay|yellow"],
        ["coldplay|yellow"],
        ["iu|palette"],
    ]
    assert [list(keys) for keys in lists["excluded_items"]] == [
        ["iu|blueming", "bts|butter"], ["bts|butter", "iu|blueming"],
        ["bts|butter", "iu|blueming"], ["iu|blueming", "bts|butter"],
    ]  # fmt: skip
    items = log.items.sort_values(["recommendation_id", "position"])
    assert items[["recommendation_id", "item", "artist", "position"]].values.tolist() == [
        ["r0", "coldplay|yellow", "Coldplay", 1], ["r0", "bts|butter", "BTS", 2],
        ["r1", "iu|palette", "IU", 1], ["r1", "iu|blueming", "IU", 2],
        ["r3", "coldplay|yellow", "Coldplay", 1], ["r3", "bts|butter", "BTS", 2],
    ]  # fmt: skip


def test_user_ids_are_hashed_when_asked_and_lists_fall_in_their_hour(tmp_path: Path) -> None:
    writer = EventWriter(tmp_path, hash_user_ids=True)
    writer.submit_list(served("a", user_id="42", task="user-items", known_user=True))
    writer.submit_list(served("b", served_at=SERVED_AT + 1.0, user_id="42"))  # the next hour
    writer.close()  # never started: close writes in the caller's thread

    hours = sorted(p.parent.name for p in (tmp_path / "lists").rglob("*.parquet"))
    assert hours == ["hour=13", "hour=14"]
    log = read_event_log(tmp_path)
    assert hash_user_id("42").startswith("sha256:") and len(hash_user_id("42")) == 23
    assert set(log.lists["user_id"]) == {hash_user_id("42")}
    assert set(log.items["user_id"]) == {hash_user_id("42")}
    late = read_event_log(tmp_path, since=datetime(2026, 3, 1, 14, tzinfo=UTC))
    assert list(late.lists["recommendation_id"]) == ["b"]
    early = read_event_log(tmp_path, until=datetime(2026, 3, 1, 14))  # naive: UTC
    assert list(early.lists["recommendation_id"]) == ["a"]


def test_feedback_is_written_with_its_received_time(tmp_path: Path) -> None:
    writer = EventWriter(tmp_path)
    received = datetime(2026, 3, 1, 9, 30, tzinfo=UTC).timestamp()
    clicked = received - 5.0
    assert writer.submit_feedback(
        [
            FeedbackEvent("r1", "bts|butter", "impression", 2),
            FeedbackEvent("r1", "bts|butter", "click", 2, clicked),
        ],
        received_at=received,
    )
    writer.close()

    feedback = read_event_log(tmp_path).feedback
    assert list(feedback["type"]) == ["impression", "click"]
    assert list(feedback["position"]) == [2, 2]
    assert list(feedback["timestamp"]) == [
        pd.Timestamp("2026-03-01 09:30", tz="UTC"),
        pd.Timestamp("2026-03-01 09:29:55", tz="UTC"),
    ]
    assert set(feedback["received_at"]) == {pd.Timestamp("2026-03-01 09:30", tz="UTC")}


def test_lists_are_built_as_they_come_and_written_as_one_part(tmp_path: Path) -> None:
    # Rows built as the lists come spread the writer's CPU over the traffic; a part waits for
    # flush_events (or flush_seconds), so parts stay as large as configured.
    writer = EventWriter(tmp_path, flush_events=1000, flush_seconds=600)
    writer.start()
    for number in range(300):
        assert writer.submit_list(served(f"r{number}"))
    for _ in range(30_000):  # the writer takes them without waiting for 1,000 ...
        if not writer.queue_depth:
            break
        threading.Event().wait(0.001)
    assert writer.queue_depth == 0
    assert not list(tmp_path.rglob("*.parquet"))  # ... and writes no part yet
    writer.close()
    [part] = tmp_path.glob("lists/*/*/*.parquet")
    assert pq.read_table(part).num_rows == 300
    assert len(read_event_log(tmp_path).items) == 600


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    drops = Drops()
    writer = EventWriter(tmp_path, queue_size=2, metrics=drops)  # not started: nothing drains
    assert writer.submit_list(served("a"))
    assert writer.submit_list(served("b"))
    assert not writer.submit_list(served("c"))
    assert not writer.submit_feedback([FeedbackEvent("a", "k", "click")] * 3)
    assert writer.queue_depth == 2
    assert (writer.dropped, drops.dropped) == (4, 4)
    writer.close()
    assert sorted(read_event_log(tmp_path).lists["recommendation_id"]) == ["a", "b"]
    assert not writer.submit_list(served("d"))  # closed: dropped and counted too
    assert drops.dropped == 5


def test_an_unwritable_directory_drops_and_counts_without_raising(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log directory should be")
    drops = Drops()
    writer = EventWriter(blocker / "events", metrics=drops, flush_seconds=60)
    writer.start()
    assert writer.submit_list(served("a"))
    assert writer.submit_feedback([FeedbackEvent("a", "k", "click")] * 2)
    writer.close()
    assert drops.dropped == 3
    assert read_event_log(blocker / "events").lists.empty


def test_a_list_without_exclusions_and_an_older_part_without_the_column_read_as_empty(
    tmp_path: Path,
) -> None:
    writer = EventWriter(tmp_path)
    writer.submit_list(served("none", excluded_items=[]))
    writer.submit_list(served("some"))
    writer.close()
    [part] = (tmp_path / "lists").rglob("*.parquet")
    old = pq.read_table(part).drop_columns(["excluded_items"]).filter(pa.array([True, False]))
    pq.write_table(
        old.set_column(0, "recommendation_id", pa.array(["old"])),
        part.with_name("part-1-old.parquet"),
    )

    log = read_event_log(tmp_path)
    assert log.skipped == []
    excluded = {row.recommendation_id: list(row.excluded_items) for row in log.lists.itertuples()}
    assert excluded == {"none": [], "some": ["iu|blueming", "bts|butter"], "old": []}


def test_a_truncated_part_is_skipped_and_reported(tmp_path: Path) -> None:
    writer = EventWriter(tmp_path)
    writer.submit_list(served("good"))
    writer.close()
    [part] = (tmp_path / "lists").rglob("*.parquet")
    broken = part.with_name("part-999-broken.parquet")
    broken.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    (part.parent / ".part-999-unfinished.parquet.tmp").write_bytes(b"half")

    log = read_event_log(tmp_path)
    assert list(log.lists["recommendation_id"]) == ["good"]
    assert [path for path, _ in log.skipped] == [str(broken)]
    assert read_event_log(tmp_path / "missing").lists.empty


def test_parts_of_several_processes_are_read_together(tmp_path: Path) -> None:
    first, second = EventWriter(tmp_path), EventWriter(tmp_path)
    second._prefix = "part-1-"  # another worker's pid
    first.submit_list(served("a"))
    second.submit_list(served("b"))
    first.close()
    second.close()
    assert sorted(read_event_log(tmp_path).lists["recommendation_id"]) == ["a", "b"]
    window = read_event_log(
        tmp_path, since=datetime.fromtimestamp(SERVED_AT, UTC) + timedelta(seconds=1)
    )
    assert window.lists.empty and window.items.empty
