"""Fixtures of the serving tests: a real uvicorn server on 127.0.0.1 and tiny packages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from serving_support import LiveServer, next_song_package, user_items_package

from segue.tracking.package import ModelPackage


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
