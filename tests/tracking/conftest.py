"""Fixtures of the model lifecycle tests: tiny packages with chosen metrics, a local store."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.data.interactions import Interactions
from segue.models.base import create_model
from segue.settings import Settings, load_settings
from segue.tracking.package import ModelPackage, histories_by_id

PackageFactory = Callable[..., ModelPackage]


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


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema created once: creating it costs seconds."""
    from mlflow import MlflowClient

    database = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()
    return database


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
