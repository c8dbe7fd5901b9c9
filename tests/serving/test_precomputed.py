"""Serving known users from a precomputed table (``serving.precomputed_dir``) on a real server:
the table's list for users in it, the live list for the rest, and no table for another version."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segue.jobs.batch import recommend_batch
from segue.ranking.ban_list import parse_ban_list
from segue.ranking.postprocess import PostProcessConfig
from segue.serving.app import create_app
from segue.serving.precomputed import (
    TABLE_SCHEMA,
    PrecomputedLists,
    load_precomputed,
    read_lists,
    read_manifest,
    table_files,
)
from segue.tracking.registry import CHAMPION, Registry, VersionInfo, open_registry

from .support import settings_with, user_items_package

DEPTH = 5
USER_ONLY = "serving.tasks=['user-items']"


def crown(registry: Registry) -> VersionInfo:
    version = registry.publish(user_items_package())
    registry.set_alias(version.name, CHAMPION, version.version)
    return version


def entries(body: dict[str, Any]) -> list[tuple[str, float]]:
    return [(item["key"], item["score"]) for item in body["items"]]


def rows_of(frame: pd.DataFrame, user: str) -> list[tuple[str, float]]:
    rows = frame[frame["user"] == user].sort_values("rank")
    return list(zip(rows["item"], rows["score"], strict=True))


def rewrite(directory: Path, frame: pd.DataFrame) -> None:
    for path in table_files(directory):
        path.unlink()
    table = pa.Table.from_pandas(frame, schema=TABLE_SCHEMA, preserve_index=False)
    pq.write_table(table, directory / "part-00000.parquet")


@pytest.fixture
def table(local_store: Path, tmp_path: Path) -> tuple[Path, pd.DataFrame, VersionInfo]:
    """The champion's table of depth 5, marked: user 1's list is replaced by the first five
    catalogue items scored 99..95 (no live list looks like that), user 2 is left out."""
    registry = open_registry(settings_with())
    version = crown(registry)
    directory = tmp_path / "lists"
    recommend_batch(
        settings_with(), "user-items", directory, k=DEPTH, progress=False, registry=registry
    )
    original = read_lists(directory)
    marked = original[original["user"] != "2"].reset_index(drop=True)
    mine = marked["user"] == "1"
    marked.loc[mine, "item"] = [str(100 + n) for n in range(DEPTH)]
    marked.loc[mine, "score"] = [100.0 - rank for rank in range(1, DEPTH + 1)]
    rewrite(directory, marked)
    return directory, original, version


def test_users_in_the_table_get_its_list_and_the_others_the_live_one(
    table: tuple[Path, pd.DataFrame, VersionInfo], serve: Callable[[Any], str]
) -> None:
    directory, original, version = table
    url = serve(create_app(settings_with(USER_ONLY, f"serving.precomputed_dir={directory}")))

    from_table = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": 3}).json()
    assert entries(from_table) == [("100", 99.0), ("101", 98.0), ("102", 97.0)]
    assert from_table["items"][0]["title"] == "Movie 0 (1990)"
    assert from_table["model"]["version"] == version.version
    assert from_table["fallback"] is None

    live = httpx.get(f"{url}/v1/users/2/recommendations", params={"k": DEPTH}).json()
    assert entries(live) == rows_of(original, "2")  # the batch list is the live list
    assert set(live) == set(from_table)  # the same response schema either way

    deeper = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": DEPTH + 1}).json()
    assert entries(deeper)[:DEPTH] == rows_of(original, "1")  # k beyond the table: live

    stranger = httpx.get(f"{url}/v1/users/nobody/recommendations").json()
    assert stranger["fallback"] == "unknown user"


def test_a_table_of_another_version_is_ignored_and_the_reason_logged(
    table: tuple[Path, pd.DataFrame, VersionInfo],
    serve: Callable[[Any], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory, original, first = table
    registry = open_registry(settings_with())
    second = crown(registry)
    caplog.set_level(logging.WARNING, logger="segue.serving.precomputed")
    url = serve(create_app(settings_with(USER_ONLY, f"serving.precomputed_dir={directory}")))

    body = httpx.get(f"{url}/v1/users/1/recommendations", params={"k": DEPTH}).json()
    assert body["model"]["version"] == second.version != first.version
    assert entries(body) == rows_of(original, "1")
    assert f"lists of {first.name} version {first.version}" in caplog.text
    assert f"the server loaded {second.name} version {second.version}" in caplog.text


def test_a_table_answers_only_under_the_rules_it_was_ranked_with(
    table: tuple[Path, pd.DataFrame, VersionInfo],
) -> None:
    directory, _, version = table
    manifest = read_manifest(directory)
    keys = [str(100 + n) for n in range(30)]
    lists = load_precomputed(directory, "user-items", version.name, version.version, keys)
    assert lists is not None and len(lists) == 39  # user 2 left out
    same = (manifest.postprocess, parse_ban_list(""))
    assert [entry.item for entry in lists.lookup("1", 2, *same).items] == [0, 1]
    assert lists.lookup("1", DEPTH + 1, *same) is None
    assert lists.lookup("2", 1, *same) is None
    assert lists.lookup("1", 2, PostProcessConfig(max_per_artist=1), same[1]) is None
    assert lists.lookup("1", 2, manifest.postprocess, parse_ban_list("100\n")) is None
    assert load_precomputed(directory, "next-song", version.name, version.version, keys) is None

    # With a re-rank the pool depends on k: only the table's own depth is answered.
    diverse = PostProcessConfig(rerank="diversity", rerank_weight=0.5)
    reranked = PrecomputedLists(replace(manifest, postprocess=diverse), read_lists(directory), keys)
    assert len(reranked.lookup("1", DEPTH, diverse, same[1]).items) == DEPTH
    assert reranked.lookup("1", DEPTH - 1, diverse, same[1]) is None
