"""The dataset layout on disk: round trip, sequence order and the content fingerprint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from segue.data.dataset import Dataset, DatasetError, item_texts, write_dataset


def _tiny_dataset(directory: Path) -> Dataset:
    items = pd.DataFrame(
        {
            "item": [0, 1, 2],
            "key": ["a|x", "b|y", "c|z"],
            "artist": ["A", "B", "C"],
            "title": ["X", "Y", "Z"],
            "count": [2, 1, 1],
        }
    )
    interactions = pd.DataFrame(
        {
            "sequence": ["p2", "p2", "p1", "p1"],
            "item": [0, 2, 1, 0],
            "position": [1, 0, 0, 1],
            "timestamp": [5, 9, 1, 2],
            "rating": [None, None, None, None],
        }
    )
    return write_dataset(directory, "playlists", items, interactions, {"counts": {}})


def test_dataset_round_trips_and_orders_sequences(tmp_path: Path) -> None:
    written = _tiny_dataset(tmp_path / "ds")
    loaded = Dataset.load(tmp_path / "ds")
    assert loaded.fingerprint == written.fingerprint
    by_position = loaded.sequences()
    assert dict(zip(by_position.sequence_ids, map(list, by_position.sequences))) == {
        "p1": [1, 0],
        "p2": [2, 0],
    }
    by_time = loaded.sequences(order_by="timestamp")
    assert dict(zip(by_time.sequence_ids, map(list, by_time.sequences))) == {
        "p1": [1, 0],
        "p2": [0, 2],
    }


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    first = _tiny_dataset(tmp_path / "one")
    items = first.items.assign(title=["X", "Y", "Changed"])
    second = write_dataset(tmp_path / "two", "playlists", items, first.interactions, {})
    assert first.fingerprint != second.fingerprint


def test_loading_a_directory_without_manifest_names_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        Dataset.load(tmp_path)


def test_item_texts_are_in_item_order_with_missing_text_as_empty() -> None:
    items = pd.DataFrame(
        {
            "item": [1, 0, 2],
            "key": ["b|y", "a|x", "c|z"],
            "artist": ["B", None, ""],
            "title": ["Y", "X", None],
            "count": [1, 2, 1],
        }
    )
    texts = item_texts(items)
    assert texts.keys == ["a|x", "b|y", "c|z"]
    assert texts.artists == ["", "B", ""]
    assert texts.titles == ["X", "Y", ""]
