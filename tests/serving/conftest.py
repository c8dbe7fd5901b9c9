"""Fixtures of the serving tests: a real uvicorn server on 127.0.0.1 and tiny packages."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from segue.tracking.package import ModelPackage

from .support import LiveServer, next_song_package, user_items_package


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Start an app on a real server; returns its base URL. Servers stop after the test."""
    servers: list[LiveServer] = []

    def start(app: Any) -> str:
        server = LiveServer(app)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def packages() -> dict[str, ModelPackage]:
    return {"next-song": next_song_package(), "user-items": user_items_package()}


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> list[str]:
    """A registry outside any test's directory where both tasks' tiny packages are champions;
    the ``--set`` values that point `segue serve` at it."""
    from segue.settings import load_settings

    from .support import publish_champions

    directory = tmp_path_factory.mktemp("registry")
    database = Path(shutil.copyfile(empty_store, directory / "mlflow.db"))
    overrides = [
        f"tracking.tracking_uri='sqlite:///{database}'",
        f"tracking.artifact_root='{directory / 'artifacts'}'",
        f"tracking.model_cache_dir='{directory / 'cache'}'",
    ]
    with contextlib.chdir(directory):  # session fixtures run before each test's own directory
        publish_champions(load_settings("dev", overrides))
    return overrides
