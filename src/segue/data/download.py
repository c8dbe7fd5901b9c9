"""Fetch an official MovieLens archive, verify its checksum and unpack it safely.

Safety first: the archive is written to a temporary file and hashed while it streams; nothing is
unpacked unless the checksum matches, and nothing is unpacked at all if any member would land
outside the target directory (absolute paths, ``..`` components, symbolic links) or if the archive
would expand beyond a sane size. A failure leaves the output directory as it was.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse
from pathlib import Path, PurePosixPath
from typing import Any, Literal

ChecksumAlgorithm = Literal["md5", "sha256"]
_CHUNK_BYTES = 1 << 16
_MAX_UNPACKED_BYTES = 4 << 30  # the largest archive here unpacks to well under 100 MB

LICENSE_REMINDER = (
    "MovieLens data comes from GroupLens Research (University of Minnesota) under its own "
    "license: research and non-commercial use only, no redistribution without permission, and "
    'publications must cite "The MovieLens Datasets: History and Context" (ACM TiiS 5(4), 2015). '
    "Read README.txt inside the unpacked directory for the full terms."
)


class DownloadError(RuntimeError):
    """A download, checksum check or unpack failed; the message says which and why."""


class HttpStatusError(DownloadError):
    """The server answered, but with an error status such as 404."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest and where it came from (for error messages)."""

    algorithm: ChecksumAlgorithm
    digest: str
    source: str

    @classmethod
    def parse(cls, text: str, source: str = "--checksum") -> Checksum:
        """Accept ``md5:<hex>``, ``sha256:<hex>`` or bare hex (32 digits MD5, 64 SHA-256)."""
        algorithm, _, digest = text.strip().lower().rpartition(":")
        if not algorithm:
            algorithm = {32: "md5", 64: "sha256"}.get(len(digest), "")
        expected_length = {"md5": 32, "sha256": 64}.get(algorithm)
        if expected_length is None or not re.fullmatch(f"[0-9a-f]{{{expected_length}}}", digest):
            raise DownloadError(
                f"{source}: {text!r} is not a checksum; give md5:<32 hex digits>, "
                "sha256:<64 hex digits> or the bare hex digest"
            )
        return cls(algorithm, digest, source)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MovieLensArchive:
    """One official archive. ``md5`` is the value GroupLens publishes, or None (see below)."""

    name: str
    url: str
    md5: str | None


# The two pinned values are the MD5 digests GroupLens publishes in the ".md5" file beside each
# zip (e.g. ml-100k.zip.md5 reads "MD5 (ml-100k.zip) = 0e33842e..."). They were not computed
# here (this project was built without network access): they are the published sidecar lines as
# quoted identically by many independent public projects, for releases that GroupLens froze years
# ago. ml-latest-small is different: "latest" is re-released now and then, so no value is pinned
# and the downloader reads the sidecar "<url>.md5" from the same server at download time.
# `--checksum` overrides any of these.
ARCHIVES: dict[str, MovieLensArchive] = {
    archive.name: archive
    for archive in (
        MovieLensArchive(
            "movielens-small",
            "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
            None,
        ),
        MovieLensArchive(
            "movielens-100k",
            "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
            "0e33842e24a9c977be4e0107933c0723",
        ),
        MovieLensArchive(
            "movielens-1m",
            "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
            "c4d9eecfca2ab87c1945afe126590906",
        ),
    )
}


def _open(url: str, timeout: float) -> HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": "segue-downloader"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise HttpStatusError(
            f"{url}: the server answered HTTP {error.code} {error.reason}"
        ) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, ConnectionRefusedError):
            detail = "connection refused (is the server running and the port right?)"
        elif isinstance(reason, socket.gaierror):
            detail = "the host name could not be resolved (no network or a wrong URL?)"
        else:
            detail = str(reason)
        raise DownloadError(f"{url}: could not connect: {detail}") from None
    except TimeoutError:
        raise DownloadError(f"{url}: no answer within {timeout:g} seconds") from None


def _require_web_url(url: str) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise DownloadError(f"{url}: only http:// and https:// URLs can be downloaded")


def read_published_checksum(url: str, timeout: float = 30.0) -> Checksum:
    """The MD5 GroupLens publishes beside an archive, read from ``<url>.md5``."""
    sidecar = f"{url}.md5"
    with _open(sidecar, timeout) as response:
        text = response.read(4096).decode("ascii", errors="replace")
    found = re.findall(r"\b[0-9a-fA-F]{32}\b", text)
    if not found:
        raise DownloadError(f"{sidecar}: no MD5 digest in the published checksum file")
    return Checksum("md5", found[-1].lower(), sidecar)


def fetch_to_file(
    url: str, destination: Path, *, progress: bool = True, timeout: float = 60.0
) -> dict[str, str]:
    """Stream ``url`` into ``destination`` with a progress bar; return its md5 and sha256."""
    _require_web_url(url)
    digests = {"md5": hashlib.md5(usedforsecurity=False), "sha256": hashlib.sha256()}
    try:
        _stream(url, destination, digests, progress=progress, timeout=timeout)
    except (HTTPException, OSError) as error:
        raise DownloadError(f"{url}: the download failed: {error}") from None
    return {name: digest.hexdigest() for name, digest in digests.items()}


def _stream(
    url: str, destination: Path, digests: dict[str, Any], *, progress: bool, timeout: float
) -> None:
    from tqdm import tqdm

    with _open(url, timeout) as response:
        size = response.headers.get("Content-Length")
        with (
            destination.open("wb") as sink,
            tqdm(
                total=int(size) if size and size.isdigit() else None,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=PurePosixPath(url).name or url,
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK_BYTES):
                sink.write(chunk)
                for digest in digests.values():
                    digest.update(chunk)
                bar.update(len(chunk))


def _check_members(archive: zipfile.ZipFile, label: str) -> None:
    """Refuse the whole archive if any member could escape the directory it is unpacked into."""
    total = 0
    for member in archive.infolist():
        name = member.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        mode = member.external_attr >> 16
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise DownloadError(
                f"{label}: member {member.filename!r} would be written outside the target "
                "directory; refusing to unpack anything"
            )
        if stat.S_ISLNK(mode):
            raise DownloadError(f"{label}: member {member.filename!r} is a symbolic link; refusing")
        total += member.file_size
    if total > _MAX_UNPACKED_BYTES:
        raise DownloadError(f"{label}: unpacks to {total:,} bytes, more than any MovieLens archive")


def unpack_safely(archive_path: Path, out_dir: Path, default_name: str) -> Path:
    """Unpack into ``out_dir``; return the dataset directory.

    An archive with one top-level directory (like every MovieLens zip) becomes
    ``out_dir/<that directory>``; anything else goes under ``out_dir/<default_name>``. The files
    land in a temporary directory first and move into place only when all of them are out.
    """
    try:
        archive = zipfile.ZipFile(archive_path)
    except zipfile.BadZipFile:
        raise DownloadError(f"{archive_path.name}: not a zip archive") from None
    with archive:
        _check_members(archive, archive_path.name)
        tops = {PurePosixPath(m.filename.replace("\\", "/")).parts[0] for m in archive.infolist()}
        single_top = len(tops) == 1 and all(
            "/" in m.filename.replace("\\", "/") for m in archive.infolist()
        )
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=out_dir))
        try:
            archive.extractall(staging)
            source = staging / next(iter(tops)) if single_top else staging
            target = out_dir / (source.name if single_top else default_name)
            if target.exists():
                shutil.rmtree(target)
            source.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def download_dataset(
    name: str,
    out_dir: str | Path,
    *,
    url: str | None = None,
    checksum: str | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download, verify and unpack one MovieLens archive; return the unpacked directory.

    ``url`` points at a mirror (the pinned official checksum still applies); ``checksum``
    overrides the expected digest. Raises ``DownloadError`` with the reason on any failure.
    """
    if name not in ARCHIVES:
        raise DownloadError(f"unknown dataset {name!r}; choose one of {', '.join(ARCHIVES)}")
    archive = ARCHIVES[name]
    source = url or archive.url
    _require_web_url(source)
    filename = PurePosixPath(source.split("?", 1)[0]).name or f"{name}.zip"
    stem = filename.removesuffix(".zip")
    root = Path(out_dir)
    if (root / stem).exists() and not force:
        raise DownloadError(f"{root / stem} already exists; pass --force to download it again")

    if checksum is not None:
        expected = Checksum.parse(checksum)
    elif archive.md5 is not None:
        expected = Checksum("md5", archive.md5, f"the official {archive.name} checksum")
    else:
        try:
            expected = read_published_checksum(source, timeout)
        except HttpStatusError as error:
            raise DownloadError(
                f"no checksum known for {filename}: {error}. Pass --checksum md5:<hex> with the "
                "value published beside the archive"
            ) from None

    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{filename}.part"
    try:
        digests = fetch_to_file(source, partial, progress=progress, timeout=timeout)
        if digests[expected.algorithm] != expected.digest:
            raise DownloadError(
                f"{filename}: checksum mismatch: expected {expected.algorithm} {expected.digest} "
                f"({expected.source}), got {digests[expected.algorithm]}; the download was "
                "deleted and nothing was unpacked"
            )
        return unpack_safely(partial, root, stem)
    finally:
        partial.unlink(missing_ok=True)
