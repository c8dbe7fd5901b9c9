"""Fixtures of the command-line tests: the ingestion fixture files of ``tests/fixtures``."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_support import make_playlists, make_ratings, tracking_overrides  # noqa: F401
from fixtures.ingest_files import write_ingest_fixtures


@pytest.fixture(scope="session")
def ingest_fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the tracked playlist fixtures and the generated MovieLens layouts."""
    return write_ingest_fixtures(tmp_path_factory.mktemp("ingest-fixtures"))
