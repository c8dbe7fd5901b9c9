"""Helpers and fixtures of the model lifecycle tests (tracking and jobs): tiny packages with chosen
metrics, a local store, and real server processes.

The fixtures are registered by importing them into a directory's ``conftest.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from segue.data.dataset import Dataset, write_dataset
from segue.data.interactions import Interactions
from segue.models.base import create_model
from segue.settings import Settings, load_settings
from segue.tracking.package import ModelPackage, histories_by_id
from segue.tracking.registry import Registry, open_registry

PackageFactory = Callable[..., ModelPackage]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(url: str, process: subprocess.Popen, log: Path, tries: int = 240) -> None:
    """Poll ``url`` until it answers 200; fail with the end of ``log`` if the process exits first.

    Each try waits on the process for up to half a second, so a server that dies is noticed at
    once and a healthy one is used as soon as it answers.
    """
    for _ in range(tries):
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
        output = log.read_text(errors="replace") if log.exists() else ""
        pytest.fail(f"{process.args[:3]} exited with {process.returncode}: {output[-3000:]}")
    pytest.fail(f"{url} did not answer after {tries} tries")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it forked."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def chain_dataset(directory: Path, n_items: int = 12, n_playlists: int = 60) -> Dataset:
    """Playlists walking a cycle: the next song is the one after the last (markov learns it)."""
    items = pd.DataFrame(
        {
            "item": np.arange(n_items),
            "key": [f"artist {i % 4} - song {i}" for i in range(n_items)],
            "artist": [f"Artist {i % 4}" for i in range(n_items)],
            "title": [f"Song {i}" for i in range(n_items)],
            "count": np.zeros(n_items, dtype=np.int64),
        }
    )
    rows = [
        (f"p{playlist}", (playlist + step) % n_items, step)
        for playlist in range(n_playlists)
        for step in range(8)
    ]
    interactions = pd.DataFrame(rows, columns=["sequence", "item", "position"])
    interactions["timestamp"] = pd.array([None] * len(rows), dtype="Int64")
    interactions["rating"] = np.nan
    return write_dataset(directory, "playlists", items, interactions, {})


def catalogue(n_items: int) -> pd.DataFrame:
    """Items with display names: key ``artist - title``, artist ``Artist i % 3``, title ``Song i``."""
    artists = [f"Artist {i % 3}" for i in range(n_items)]
    titles = [f"Song {i}" for i in range(n_items)]
    return pd.DataFrame(
        {
            "item": np.arange(n_items),
            "key": [f"{a.lower()} - {t.lower()}" for a, t in zip(artists, titles, strict=True)],
            "artist": artists,
            "title": titles,
            "count": np.ones(n_items, dtype=np.int64),
        }
    )


@pytest.fixture
def settings(empty_store: Path) -> Settings:
    """The dev profile on the embedded store (``.segue/mlflow.db``) in the test's own directory."""
    Path(".segue").mkdir()
    shutil.copyfile(empty_store, ".segue/mlflow.db")
    return load_settings("dev")


@pytest.fixture
def make_package(chain_sequences: Interactions) -> PackageFactory:
    """A fitted most-popular package whose recorded metrics and provenance the test chooses.

    Popularity rises with the item index (item 9 is the most popular).
    """

    # Extra one-song sequences make every item's popularity distinct: rankings have no ties.
    extra = [np.array([item]) for item in range(chain_sequences.n_items) for _ in range(item + 1)]
    interactions = Interactions(
        [*chain_sequences.sequences, *extra],
        chain_sequences.n_items,
        [*chain_sequences.sequence_ids, *(f"x{i}" for i in range(len(extra)))],
    )

    def build(
        ndcg: float = 0.5,
        *,
        task: str = "next-song",
        fingerprint: str = "fp-1",
        protocol: str = "playlist-holdout",
        metrics: dict[str, float] | None = None,
    ) -> ModelPackage:
        scorer = create_model("most-popular").fit(interactions)
        recorded = {"ndcg_at_10": ndcg, "recall_at_10": ndcg / 2} if metrics is None else metrics
        return ModelPackage(
            task=task,
            scorer=scorer,
            items=catalogue(interactions.n_items),
            user_histories=histories_by_id(interactions) if task == "user-items" else {},
            metadata={
                "dataset_fingerprint": fingerprint,
                "split": {"protocol": protocol, "seed": 42},
                "metrics": recorded,
            },
        )

    return build


@pytest.fixture
def registry(settings: Settings) -> Registry:
    """The registry of the test's store, one client for the whole test."""
    return open_registry(settings)
