"""`segue data download` against a real HTTP server on 127.0.0.1 serving archives built here."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.archive_server import (
    MOVIES,
    RATINGS,
    publish_small_archive,
    serve_directory,
    write_zip,
)
from segue.data.download import Checksum, DownloadError, download_dataset


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static file server over a directory; yields its base URL and the directory."""
    with serve_directory(tmp_path) as served:
        yield served


@pytest.fixture
def small_archive(server: tuple[str, Path]) -> tuple[str, str]:
    """ml-latest-small.zip with its published-style .md5 sidecar; returns (url, md5)."""
    return publish_small_archive(*server)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_verifies_the_published_md5_and_unpacks(
    small_archive: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = small_archive
    out = tmp_path / "raw"
    path = download_dataset("movielens-small", out, url=url, progress=False)
    assert path == out / "ml-latest-small"
    assert (path / "ratings.csv").read_text() == RATINGS
    assert (path / "movies.csv").read_text() == MOVIES
    assert _leftovers(out) == ["ml-latest-small"]  # no partial file, no staging directory


def test_an_explicit_sha256_checksum_is_honoured(server: tuple[str, Path], tmp_path: Path) -> None:
    base, served = server
    write_zip(served / "ml-100k.zip", {"ml-100k/u.data": "1\t1\t5\t874965758\n"})
    sha256 = hashlib.sha256((served / "ml-100k.zip").read_bytes()).hexdigest()
    path = download_dataset(
        "movielens-100k",
        tmp_path / "raw",
        url=f"{base}/ml-100k.zip",
        checksum=f"sha256:{sha256}",
        progress=False,
    )
    assert (path / "u.data").exists()


def test_the_pinned_official_checksum_rejects_a_different_archive(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base, served = server
    write_zip(served / "ml-1m.zip", {"ml-1m/ratings.dat": "1::1193::5::978300760\n"})
    with pytest.raises(DownloadError, match=r"checksum mismatch.*official movielens-1m checksum"):
        download_dataset("movielens-1m", tmp_path / "raw", url=f"{base}/ml-1m.zip", progress=False)
    assert _leftovers(tmp_path / "raw") == []


def test_checksum_mismatch_leaves_nothing_unpacked(
    small_archive: tuple[str, str], tmp_path: Path
) -> None:
    url, digest = small_archive
    wrong = "0" * 32
    with pytest.raises(DownloadError, match=f"expected md5 {wrong}.*got {digest}.*nothing was"):
        download_dataset(
            "movielens-small", tmp_path / "raw", url=url, checksum=wrong, progress=False
        )
    assert _leftovers(tmp_path / "raw") == []


def test_http_404_is_a_clear_error(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_dataset(
            "movielens-100k",
            tmp_path / "raw",
            url=f"{base}/missing.zip",
            checksum="md5:" + "0" * 32,
            progress=False,
        )
    with pytest.raises(DownloadError, match=r"no checksum known.*HTTP 404.*--checksum"):
        download_dataset("movielens-small", tmp_path / "raw", url=f"{base}/x.zip", progress=False)
    assert _leftovers(tmp_path / "raw") == []


def test_connection_refused_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now.
    with pytest.raises(DownloadError, match="connection refused"):
        download_dataset(
            "movielens-small",
            tmp_path / "raw",
            url=f"http://127.0.0.1:{port}/ml-latest-small.zip",
            progress=False,
        )


@pytest.mark.parametrize("member", ["../evil.txt", "ml-1m/../../evil.txt", "/etc/evil.txt"])
def test_an_archive_escaping_its_directory_is_refused(
    server: tuple[str, Path], tmp_path: Path, member: str
) -> None:
    base, served = server
    digest = write_zip(served / "ml-1m.zip", {"ml-1m/ratings.dat": "ok\n", member: "pwned\n"})
    out = tmp_path / "deep" / "raw"
    with pytest.raises(DownloadError, match="outside the target directory"):
        download_dataset(
            "movielens-1m", out, url=f"{base}/ml-1m.zip", checksum=digest, progress=False
        )
    assert _leftovers(out) == []
    assert not (tmp_path / "deep" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_an_existing_copy_needs_force(small_archive: tuple[str, str], tmp_path: Path) -> None:
    url, _ = small_archive
    out = tmp_path / "raw"
    download_dataset("movielens-small", out, url=url, progress=False)
    (out / "ml-latest-small" / "stale.txt").write_text("old")
    with pytest.raises(DownloadError, match=r"already exists.*--force"):
        download_dataset("movielens-small", out, url=url, progress=False)
    path = download_dataset("movielens-small", out, url=url, force=True, progress=False)
    assert sorted(p.name for p in path.iterdir()) == ["movies.csv", "ratings.csv"]


def test_checksum_text_forms() -> None:
    assert Checksum.parse("MD5:" + "A" * 32).digest == "a" * 32
    assert Checksum.parse("b" * 64).algorithm == "sha256"
    with pytest.raises(DownloadError, match="not a checksum"):
        Checksum.parse("sha1:" + "c" * 40)
