"""The in-memory containers, the dataset layout on disk, and top-K selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.data.dataset import Dataset, DatasetError, write_dataset
from segue.data.interactions import Interactions, as_history
from segue.ranking.topk import mask_items, top_k


def test_as_history_drops_unknown_indices_and_keeps_order() -> None:
    assert as_history([3, -1, 0, 9, 2], n_items=4).tolist() == [3, 0, 2]


def test_csr_is_binary_even_with_repeats() -> None:
    interactions = Interactions([np.array([0, 0, 2]), np.array([1])], 3, ["a", "b"])
    matrix = interactions.to_csr().toarray()
    assert matrix.tolist() == [[1, 0, 1], [0, 1, 0]]
    assert interactions.item_counts().tolist() == [2, 1, 1]


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


def test_top_k_orders_by_score_breaks_ties_by_index_and_pads() -> None:
    scores = np.array([[0.1, 0.9, 0.9, np.nan], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    masked = mask_items(scores, [np.array([], dtype=np.int64), np.array([3])])
    assert top_k(masked, 3).tolist() == [[1, 2, 0], [2, 1, 0]]
    assert top_k(masked, 5).tolist() == [[1, 2, 0, -1, -1], [2, 1, 0, -1, -1]]


def test_mask_items_does_not_modify_the_input() -> None:
    scores = np.ones((1, 3), dtype=np.float32)
    mask_items(scores, [np.array([0])])
    assert scores.tolist() == [[1.0, 1.0, 1.0]]


def test_top_k_keeps_the_lowest_indices_among_items_tied_at_the_cut() -> None:
    scores = np.zeros((2, 50), dtype=np.float32)
    scores[1, 40] = 1.0
    assert top_k(scores, 3).tolist() == [[0, 1, 2], [40, 0, 1]]
