"""Tiny datasets on disk, written with ``write_dataset`` the way ``segue ingest`` writes them.

Fixtures registered by importing them into a directory's ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.data.dataset import Dataset, write_dataset


def _items(n_items: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": np.arange(n_items),
            "key": [f"k{i}" for i in range(n_items)],
            "artist": [f"artist {i % 4}" for i in range(n_items)],
            "title": [f"title {i}" for i in range(n_items)],
            "count": np.zeros(n_items, dtype=np.int64),
        }
    )


def write_ratings(
    directory: Path, n_users: int = 30, n_items: int = 24, per_user: int = 10
) -> Dataset:
    """Two taste groups (even / odd items); users take turns, one rating per second."""
    rows = []
    for user in range(n_users):
        rng = np.random.default_rng(user)
        pool = np.arange(user % 2, n_items, 2)
        for position, item in enumerate(rng.choice(pool, size=per_user, replace=False)):
            clock = 1_000_000 + position * n_users + user
            rows.append((f"u{user:02d}", int(item), position, clock, 4.0))
    frame = pd.DataFrame(rows, columns=["sequence", "item", "position", "timestamp", "rating"])
    return write_dataset(directory, "ratings", _items(n_items), frame, {"source": "test"})


def write_playlists(directory: Path, n_playlists: int = 40, n_items: int = 12) -> Dataset:
    """Playlists walking the cycle 0 -> 1 -> ... -> n-1 -> 0 from different starts."""
    rows = []
    for playlist in range(n_playlists):
        start = playlist % n_items
        for position in range(6):
            rows.append((f"p{playlist:02d}", (start + position) % n_items, position, None, None))
    frame = pd.DataFrame(rows, columns=["sequence", "item", "position", "timestamp", "rating"])
    frame["timestamp"] = frame["timestamp"].astype("Int64")
    frame["rating"] = frame["rating"].astype("float64")
    return write_dataset(directory, "playlists", _items(n_items), frame, {"source": "test"})


@pytest.fixture
def ratings_dir(tmp_path: Path) -> Path:
    return write_ratings(tmp_path / "ratings").directory


@pytest.fixture
def playlists_dir(tmp_path: Path) -> Path:
    return write_playlists(tmp_path / "playlists").directory


@pytest.fixture
def make_ratings() -> Callable[..., Dataset]:
    return write_ratings


@pytest.fixture
def make_playlists() -> Callable[..., Dataset]:
    return write_playlists


@pytest.fixture(scope="session")
def tracking_overrides(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """--set values pointing MLflow at one sqlite store shared by this session's tests.

    Creating a store runs MLflow's schema migrations (seconds), so tests share one.
    """
    root = tmp_path_factory.mktemp("mlflow")
    return [
        f"tracking.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"tracking.artifact_root={root / 'artifacts'}",
    ]
