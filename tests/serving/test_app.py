"""The app's default loader: the champion of a real MLflow registry (SQLite store in the test's
directory)."""

from __future__ import annotations

import time

import httpx
import pytest

from segue.serving.app import create_app
from segue.settings import load_settings
from segue.tracking.registry import CHAMPION, open_registry

from .support import next_song_package

pytestmark = pytest.mark.slow

ADMIN_KEY = "registry-test-key-0123"
POLL_SECONDS = 60.0


def test_serves_the_champion_and_follows_the_alias(serve, local_store) -> None:
    settings = load_settings(
        "dev", ["serving.reload_interval_seconds=0", f"serving.admin_api_key='{ADMIN_KEY}'"]
    )
    registry = open_registry(settings)
    first = registry.publish(next_song_package("item-knn"))
    second = registry.publish(next_song_package("most-popular"))
    registry.set_alias(first.name, CHAMPION, first.version)

    url = serve(create_app(settings))  # the default loader: the registry's champion
    body = {"songs": ["Coldplay - Yellow"], "k": 3}
    answer = httpx.post(f"{url}/v1/next-songs", json=body).json()
    assert answer["model"] == {
        "name": "dev.segue-next-song",
        "version": first.version,
        "algorithm": "item-knn",
    }
    missing = httpx.get(f"{url}/v1/users/1/recommendations")
    assert missing.status_code == 503
    assert "no champion" in missing.json()["detail"]

    headers = {"X-API-Key": ADMIN_KEY}
    unchanged = httpx.post(f"{url}/v1/admin/reload", headers=headers).json()["results"]
    assert {r["task"]: r["outcome"] for r in unchanged} == {
        "next-song": "unchanged",
        "user-items": "no champion",
    }

    registry.set_alias(first.name, CHAMPION, second.version)
    moved = httpx.post(f"{url}/v1/admin/reload", headers=headers).json()["results"]
    assert {r["task"]: (r["outcome"], r["version"]) for r in moved}["next-song"] == (
        "loaded",
        second.version,
    )
    answer = httpx.post(f"{url}/v1/next-songs", json=body).json()
    assert (answer["model"]["version"], answer["model"]["algorithm"]) == (
        second.version,
        "most-popular",
    )


def test_the_poller_follows_the_alias_without_any_call(serve, local_store) -> None:
    settings = load_settings(
        "dev", ["serving.reload_interval_seconds=0.2", "serving.tasks=['next-song']"]
    )
    registry = open_registry(settings)
    first = registry.publish(next_song_package("item-knn"))
    second = registry.publish(next_song_package("most-popular"))
    registry.set_alias(first.name, CHAMPION, first.version)
    url = serve(create_app(settings))
    assert httpx.get(f"{url}/readyz").json()["models"] == {"next-song": first.version}

    registry.set_alias(first.name, CHAMPION, second.version)
    deadline = time.monotonic() + POLL_SECONDS
    while httpx.get(f"{url}/readyz").json()["models"]["next-song"] != second.version:
        assert time.monotonic() < deadline, "the server never picked up the new champion"
        time.sleep(0.1)
    answer = httpx.post(f"{url}/v1/next-songs", json={"songs": ["iu|palette"]}).json()
    assert answer["model"]["algorithm"] == "most-popular"
