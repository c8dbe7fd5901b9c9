"""The promotion lock: one gate decision and alias move at a time per registered model.

The lock is a PostgreSQL advisory lock when the registry is PostgreSQL (or ``tracking.lock_uri``
names one), else an ``fcntl`` file lock next to a SQLite store (or inside a file store). Limits: a
file lock only serialises processes on one host and one file system; against an HTTP tracking
server without ``lock_uri`` there is no lock, and the promotion job's compare-and-set narrows the
race window to the gap between the re-read and the alias move but does not close it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from segue.settings import Settings
from segue.tracking.promotion import PromotionError
from segue.tracking.stores import postgres_dsn, sqlite_path

log = logging.getLogger(__name__)

LOCK_TIMEOUT_SECONDS = 120


@contextmanager
def promotion_lock(settings: Settings, name: str) -> Iterator[str]:
    """Serialise gate decisions and alias moves for one registered model; yields the lock kind."""
    store = settings.tracking.registry_uri or settings.tracking.tracking_uri
    postgres = postgres_dsn(settings.tracking.lock_uri) or postgres_dsn(store)
    database = sqlite_path(store)
    if postgres is not None:
        with _advisory_lock(postgres, name, settings.tracking.request_timeout_seconds):
            yield "postgresql advisory lock"
    elif database is not None:
        with _file_lock(database.with_name(database.name + ".promotion.lock")):
            yield "file lock"
    elif urlparse(store).scheme in ("", "file"):
        root = Path(urlparse(store).path or store)
        with _file_lock(root / ".promotion.lock"):
            yield "file lock"
    else:
        log.warning(
            "%s: no promotion lock for %s; set tracking.lock_uri to a PostgreSQL URI to "
            "serialise concurrent promotions",
            name,
            store,
        )
        yield "none (compare-and-set only)"


@contextmanager
def _advisory_lock(dsn: str, name: str, connect_timeout: int) -> Iterator[None]:
    import psycopg2  # only a PostgreSQL store needs the driver loaded

    key = int.from_bytes(hashlib.sha256(f"segue-promotion:{name}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0  # bigint range
    try:
        connection = psycopg2.connect(dsn, connect_timeout=connect_timeout)
    except psycopg2.Error as error:
        raise PromotionError(f"cannot reach the promotion lock database: {error}") from error
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (f"{LOCK_TIMEOUT_SECONDS}s",))
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg2.errors.LockNotAvailable as error:
                raise PromotionError(
                    f"{name}: another promotion held the lock for over {LOCK_TIMEOUT_SECONDS}s"
                ) from error
            try:
                yield
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        connection.close()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
