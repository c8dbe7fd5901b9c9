"""A registered version's package, downloaded once into the cache and loaded by alias or version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segue.tracking.package_cache import load_champion, load_version
from segue.tracking.registry import CHAMPION, Registry, RegistryError


def artifact_dir(version_source: str) -> Path:
    """The local artifact folder of a logged model on the embedded store."""
    model_id = version_source.removeprefix("models:/")
    return Path(".segue/artifacts/models") / model_id / "artifacts"


def test_the_champion_is_loaded_by_alias_and_follows_it(registry: Registry, make_package):
    with pytest.raises(RegistryError, match="has no champion yet"):
        registry.resolve_champion("next-song")
    first = registry.publish(make_package(0.3))
    second = registry.publish(make_package(0.6))
    registry.set_alias(first.name, CHAMPION, first.version)

    info, package = load_champion(registry, "next-song")
    assert info.version == first.version
    assert package.metrics["ndcg_at_10"] == 0.3
    assert package.items["artist"].tolist()[:2] == ["Artist 0", "Artist 1"]
    expected = make_package().scorer.score([[0, 1]])
    np.testing.assert_allclose(package.scorer.score([[0, 1]]), expected)

    registry.set_alias(first.name, CHAMPION, second.version)
    info, package = load_champion(registry, "next-song")
    assert info.version == second.version
    assert package.metrics["ndcg_at_10"] == 0.6


def test_a_downloaded_version_is_served_from_the_cache(registry: Registry, make_package):
    version = registry.publish(make_package(0.3))
    load_version(registry, "next-song", version.version)
    # The store loses the files; the cached copy of this version still serves.
    for path in artifact_dir(version.source).rglob("*.parquet"):
        path.unlink()
    _, package = load_version(registry, "next-song", version.version)
    assert len(package.items) == 10


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("delete-arrays", "arrays.npz"),
        ("garble-items", "items.parquet"),
        ("delete-package", "artifacts/package"),
    ],
)
def test_a_missing_or_corrupt_artifact_names_what_is_wrong(
    registry: Registry, make_package, damage: str, named: str
):
    version = registry.publish(make_package(0.3))
    registry.set_alias(version.name, CHAMPION, version.version)
    package_dir = artifact_dir(version.source) / "artifacts" / "package"
    if damage == "delete-arrays":
        (package_dir / "model" / "arrays.npz").unlink()
    elif damage == "garble-items":
        (package_dir / "items.parquet").write_bytes(b"not parquet at all")
    else:
        for path in sorted(package_dir.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        package_dir.rmdir()
    with pytest.raises(RegistryError, match=f"version {version.version}.*{named}|{named}"):
        load_champion(registry, "next-song")
    assert registry.resolve_champion("next-song").version == version.version
