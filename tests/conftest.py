"""Fixtures shared by every test tier: tiny hand-checkable data and the MovieLens location."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from segue.data.interactions import Holdout, Interactions

REPO = Path(__file__).resolve().parents[1]


def movielens_small_dir() -> Path | None:
    """ml-latest-small from $SEGUE_DATA or ../shared/data, or None when absent."""
    candidates = []
    if os.environ.get("SEGUE_DATA"):
        candidates.append(Path(os.environ["SEGUE_DATA"]) / "ml-latest-small")
    candidates.append(REPO.parent / "shared" / "data" / "ml-latest-small")
    for candidate in candidates:
        if (candidate / "ratings.csv").exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created once: creating it costs seconds."""
    from mlflow import MlflowClient

    database = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()
    return database


@pytest.fixture
def local_store(empty_store: Path) -> Path:
    """The dev profile's embedded store (``.segue/mlflow.db``) in the test's own directory."""
    Path(".segue").mkdir()
    return Path(shutil.copyfile(empty_store, ".segue/mlflow.db"))


@pytest.fixture
def movielens_small() -> Path:
    path = movielens_small_dir()
    if path is None:
        pytest.skip("ml-latest-small not found: set SEGUE_DATA or place it at ../shared/data")
    return path


@pytest.fixture(autouse=True)
def _isolated_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in its own directory with the repo's configs and no SEGUE_* leakage."""
    for name in list(os.environ):
        if name.startswith("SEGUE_") and name != "SEGUE_DATA":
            monkeypatch.delenv(name)
    monkeypatch.setenv("SEGUE_CONFIG_DIR", str(REPO / "configs"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def checkerboard() -> Interactions:
    """Two disjoint taste groups: even users like even items, odd users like odd items.

    A known-answer case: any sensible model ranks same-parity items above the other parity.
    """
    n_items = 20
    sequences = []
    for user in range(40):
        parity = user % 2
        rng = np.random.default_rng(user)
        items = rng.choice(np.arange(parity, n_items, 2), size=6, replace=False)
        sequences.append(items.astype(np.int64))
    return Interactions(sequences, n_items, [f"u{u}" for u in range(40)])


@pytest.fixture
def chain_sequences() -> Interactions:
    """Ordered playlists that walk a cycle 0 -> 1 -> ... -> 9 -> 0: the next item is known."""
    n_items = 10
    sequences = [
        np.array([(start + step) % n_items for step in range(6)], dtype=np.int64)
        for start in range(n_items)
        for _ in range(8)
    ]
    return Interactions(sequences, n_items, [f"p{i}" for i in range(len(sequences))])


def holdout_from(histories: list[list[int]], targets: list[list[int]]) -> Holdout:
    return Holdout(
        [np.array(h, dtype=np.int64) for h in histories],
        [np.array(t, dtype=np.int64) for t in targets],
    )
