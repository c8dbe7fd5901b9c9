"""Batch top-K: the champion's lists for every known user or playlist, as the server ranks them,
and the same rows from the local and the Ray engine."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifecycle_support import catalogue
from segue.data.interactions import Interactions
from segue.jobs.batch import BatchError, recommend_batch
from segue.models.base import create_model
from segue.ranking.ban_list import BanListFile
from segue.serving.precomputed import MANIFEST_FILE, read_lists, read_manifest
from segue.settings import Settings, load_settings
from segue.tracking.package import ModelPackage, histories_by_id
from segue.tracking.pyfunc import SeguePyfuncModel
from segue.tracking.registry import CHAMPION, Registry, RegistryError, VersionInfo

N_ITEMS = 24
N_USERS = 30


def user_items_package() -> ModelPackage:
    """EASE on two taste groups (even and odd items); artists ``Artist i % 3``."""
    histories = []
    for user in range(N_USERS):
        rng = np.random.default_rng(user)
        pool = np.arange(user % 2, N_ITEMS, 2)
        histories.append(rng.choice(pool, size=5, replace=False).astype(np.int64))
    train = Interactions(histories, N_ITEMS, [f"u{user:02d}" for user in range(N_USERS)])
    items = catalogue(N_ITEMS)
    items["count"] = train.item_counts()
    return ModelPackage(
        "user-items",
        create_model("ease").fit(train),
        items,
        histories_by_id(train),
        metadata={
            "dataset_fingerprint": "fp-1",
            "split": {"protocol": "random-holdout", "seed": 42},
            "metrics": {"ndcg_at_10": 0.5},
        },
    )


def crown(registry: Registry, package: ModelPackage) -> VersionInfo:
    """Register ``package`` and make it its task's champion."""
    version = registry.publish(package)
    registry.set_alias(version.name, CHAMPION, version.version)
    return version


def pyfunc_lists(package: ModelPackage, settings: Settings, users: list[str], k: int):
    """What the logged pyfunc model (the other path through the same ranking) answers."""
    model = SeguePyfuncModel()
    model.prepare(package, settings)
    answer = model.predict(None, pd.DataFrame({"user": users}), params={"k": k})
    return {
        user: list(zip(items, scores, strict=True))
        for user, items, scores in zip(users, answer["items"], answer["scores"], strict=True)
    }


def table_lists(frame: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    return {
        str(user): list(zip(group["item"], group["score"], strict=True))
        for user, group in frame.groupby("user", sort=True)
    }


@pytest.fixture
def ruled_settings(settings: Settings) -> Settings:
    """The test store's settings with a ban list and a per-artist cap."""
    Path("ban.txt").write_text("# banned\nartist 0 - song 0\n", encoding="utf-8")
    return load_settings(
        "dev", ["serving.ban_list_file=ban.txt", "serving.max_per_artist=2", "batch.batch_size=7"]
    )


def test_every_known_user_gets_the_list_serving_ranks(
    ruled_settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    package = user_items_package()
    version = crown(registry, package)
    result = recommend_batch(
        ruled_settings, "user-items", tmp_path / "lists", k=4, progress=False, registry=registry
    )

    frame = read_lists(result.out_dir)
    assert list(frame.columns) == [
        "user",
        "rank",
        "item",
        "score",
        "fallback",
        "registered_name",
        "version",
    ]
    assert sorted(frame["user"].unique()) == sorted(package.user_histories)
    assert frame.groupby("user")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4]).all()
    assert set(frame["registered_name"]) == {version.name}
    assert set(frame["version"]) == {version.version}
    assert frame["fallback"].isna().all()

    # The ranking of serving: ban list, per-artist cap, history excluded.
    assert "artist 0 - song 0" not in set(frame["item"])
    artists = frame["item"].str.split(" - ").str[0]
    assert artists.groupby(frame["user"]).value_counts().max() <= 2
    keys = package.items["key"].to_numpy()
    for user, history in package.user_histories.items():
        assert not set(frame.loc[frame["user"] == user, "item"]) & set(keys[history])
    users = sorted(package.user_histories)
    assert table_lists(frame) == pyfunc_lists(package, ruled_settings, users, 4)

    manifest = read_manifest(result.out_dir)
    assert (manifest.registered_name, manifest.version) == (version.name, version.version)
    assert (manifest.task, manifest.k, manifest.algorithm) == ("user-items", 4, "ease")
    assert (manifest.lists, manifest.rows) == (N_USERS, len(frame))
    assert manifest.postprocess.max_per_artist == 2
    assert manifest == result.manifest


def test_next_song_lists_are_made_for_every_playlist_of_a_file(
    settings: Settings,
    registry: Registry,
    make_package: Callable[..., ModelPackage],
    tmp_path: Path,
) -> None:
    crown(registry, make_package())
    playlists = tmp_path / "playlists.jsonl"
    records = [
        {"video_id": "a", "songs": ["Artist 1 - Song 1", "artist 2 - song 2"]},
        {"video_id": "b", "songs": ["Nobody - Nothing"]},
        {"video_id": "a", "songs": ["Artist 0 - Song 0"]},
        {"songs": ["Artist 3 - Song 3"]},
    ]
    playlists.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")

    result = recommend_batch(
        settings,
        "next-song",
        tmp_path / "lists",
        playlists=playlists,
        k=3,
        progress=False,
        registry=registry,
    )

    frame = read_lists(result.out_dir)
    assert (result.rejected_playlists, result.duplicate_playlists) == (1, 1)
    assert result.manifest.lists == 2
    lists = table_lists(frame)
    # The model's popularity rises with the index; the playlist's own songs are left out.
    assert [key for key, _ in lists["a"]] == [
        "artist 0 - song 9",
        "artist 2 - song 8",
        "artist 1 - song 7",
    ]
    # No song known: the catalogue's popularity (all equal here, so the first items), as served.
    assert [key for key, _ in lists["b"]] == [
        "artist 0 - song 0",
        "artist 1 - song 1",
        "artist 2 - song 2",
    ]
    fallbacks = frame.groupby("user")["fallback"].first()
    assert fallbacks["b"] == "no known songs"
    assert pd.isna(fallbacks["a"])


@pytest.mark.parametrize(
    ("task", "options", "named"),
    [
        ("next-song", {}, "--playlists"),
        ("user-items", {"playlists": "x.json"}, "--playlists"),
        ("user-items", {"k": 0}, "--k"),
        ("user-items", {"engine": "spark"}, "--engine"),
        ("movies", {}, "--task"),
    ],
)
def test_bad_input_is_refused_naming_the_option(
    settings: Settings, tmp_path: Path, task: str, options: dict, named: str
) -> None:
    with pytest.raises(BatchError, match=named):
        recommend_batch(settings, task, tmp_path / "lists", progress=False, **options)
    assert not (tmp_path / "lists").exists()


def test_a_used_output_directory_and_a_missing_champion_are_refused(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.parquet").write_bytes(b"")
    with pytest.raises(BatchError, match="--out"):
        recommend_batch(settings, "user-items", used, progress=False, registry=registry)
    with pytest.raises(RegistryError, match="has no champion yet"):
        recommend_batch(settings, "user-items", tmp_path / "new", progress=False, registry=registry)
    assert not (tmp_path / "new" / MANIFEST_FILE).exists()


def test_a_malformed_ban_list_fails_the_job_instead_of_banning_nothing(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    Path("ban.txt").write_text("artist:\n", encoding="utf-8")
    assert not BanListFile("ban.txt").current()  # the server would skip it and ban nothing
    broken = load_settings("dev", ["serving.ban_list_file=ban.txt"])
    with pytest.raises(BatchError, match=r"serving\.ban_list_file"):
        recommend_batch(broken, "user-items", tmp_path / "lists", progress=False)


# -- the Ray engine -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster for this module: 2 CPUs, no dashboard."""
    ray = pytest.importorskip(
        "ray", reason="Ray is not installed: pip install 'segue[ray]' to run the Ray engine tests"
    )
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def ray_settings(*overrides: str) -> Settings:
    """Two actors of half a CPU each: on 2 cores Ray keeps room for its own tasks, so the
    scoring and the writes can never wait on each other forever."""
    return load_settings(
        "dev",
        ["batch.batch_size=7", "batch.ray_actors=2", "batch.ray_actor_cpus=0.5", *overrides],
    )


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_ray_engine_writes_the_rows_the_local_engine_writes(
    ray_cluster: None, settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    Path("ban.txt").write_text("artist 1 - song 1\n", encoding="utf-8")
    crown(registry, user_items_package())
    ruled = ray_settings("serving.ban_list_file=ban.txt", "serving.max_per_artist=2")
    local = recommend_batch(ruled, "user-items", tmp_path / "local", k=5, progress=False)
    on_ray = recommend_batch(
        ruled, "user-items", tmp_path / "ray", engine="ray", k=5, progress=False
    )

    assert len(list(on_ray.out_dir.glob("*.parquet"))) > 1  # written by Ray, block by block
    pd.testing.assert_frame_equal(read_lists(local.out_dir), read_lists(on_ray.out_dir))
    assert on_ray.manifest.engine == "ray"
    assert local.manifest.rows == on_ray.manifest.rows == N_USERS * 5


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_ray_engine_scores_playlists_like_the_local_engine(
    ray_cluster: None,
    settings: Settings,
    registry: Registry,
    make_package: Callable[..., ModelPackage],
    tmp_path: Path,
) -> None:
    crown(registry, make_package())
    playlists = tmp_path / "playlists.json"
    records = [
        {"video_id": f"p{n}", "songs": [f"Artist {n % 3} - Song {n % 10}", "Nobody - Nothing"]}
        for n in range(20)
    ]
    playlists.write_text(json.dumps(records), encoding="utf-8")
    local = recommend_batch(
        ray_settings(), "next-song", tmp_path / "local", playlists=playlists, progress=False
    )
    on_ray = recommend_batch(
        ray_settings(),
        "next-song",
        tmp_path / "ray",
        engine="ray",
        playlists=playlists,
        progress=False,
    )
    pd.testing.assert_frame_equal(read_lists(local.out_dir), read_lists(on_ray.out_dir))
    assert on_ray.manifest.lists == 20
