"""Store URIs in one place: the tracking and registry stores, the promotion lock, Optuna's studies.

Kinds of URI Segue meets and what it does with each:

- ``sqlite:///path``: a local file. Its directory is created on first use, and a relative path is
  made absolute (MLflow caches one store per URI, so a relative path would keep pointing at the
  first working directory's file after a change of directory).
- ``http(s)://``: a tracking server; it decides where artifacts go and holds no lock Segue can use.
- ``postgresql[+driver]://``: a database. The promotion lock takes a libpq DSN; SQLAlchemy
  (Optuna's storage) is told the psycopg2 driver, the one Segue installs.
- the Optuna storage URL (see ``optuna_storage_url``).

Nothing here imports MLflow or Optuna; it is string and path work only.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from segue.settings import Settings

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
PSYCOPG2_SCHEME = "postgresql+psycopg2"
DEFAULT_OPTUNA_STORAGE = "sqlite:///.segue/optuna.db"
OPTUNA_SCHEMA = "optuna"
_OPTUNA_SEARCH_PATH = f"options=-csearch_path%3D{OPTUNA_SCHEMA}"
_REMOTE_PREFIXES = ("http://", "https://", "databricks")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI, else None."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    return Path(uri.removeprefix(SQLITE_PREFIX).split("?", 1)[0])


def prepare_store_uri(uri: str) -> str:
    """Create the directory of a local sqlite store (e.g. ``.segue/``) the first time it is used."""
    path = sqlite_path(uri)
    if path is not None and str(path) and str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    return uri


def absolute_sqlite_uri(uri: str) -> str:
    """``uri`` with a relative SQLite path made absolute; any other URI unchanged."""
    path = sqlite_path(uri)
    if path is None or path.is_absolute() or str(path) == ":memory:":
        return uri
    return SQLITE_PREFIX + str(path.resolve()) + uri[len(SQLITE_PREFIX) + len(str(path)) :]


def absolute_store(settings: Settings) -> Settings:
    """``settings`` with relative SQLite tracking and registry paths made absolute."""
    tracking = settings.tracking
    updated = {
        key: absolute_sqlite_uri(getattr(tracking, key)) for key in ("tracking_uri", "registry_uri")
    }
    if all(getattr(tracking, key) == value for key, value in updated.items()):
        return settings
    return settings.model_copy(update={"tracking": tracking.model_copy(update=updated)})


def tracking_uri(settings: Settings) -> str:
    """The tracking store, absolute and with its directory created."""
    return prepare_store_uri(absolute_sqlite_uri(settings.tracking.tracking_uri))


def registry_uri(settings: Settings) -> str:
    """The registry store: ``tracking.registry_uri``, else the tracking store."""
    uri = settings.tracking.registry_uri or settings.tracking.tracking_uri
    return prepare_store_uri(absolute_sqlite_uri(uri))


def is_remote(uri: str) -> bool:
    """A tracking server (HTTP), which decides for itself where artifacts go."""
    return uri.startswith(_REMOTE_PREFIXES)


def artifact_location(settings: Settings) -> str | None:
    """Where experiments Segue creates keep their artifacts: an absolute file URI under
    ``tracking.artifact_root``, or None for a tracking server, which decides for itself."""
    if is_remote(settings.tracking.tracking_uri):
        return None
    return Path(settings.tracking.artifact_root).resolve().as_uri()


def postgres_dsn(uri: str) -> str | None:
    """A libpq URI for a ``postgresql[+driver]://`` store URI, else None."""
    parsed = urlparse(uri)
    if parsed.scheme.split("+")[0] not in POSTGRES_SCHEMES:
        return None
    return parsed._replace(scheme="postgresql").geturl()


def psycopg2_url(uri: str) -> str:
    """A SQLAlchemy URL naming the psycopg2 driver, so SQLAlchemy does not fall back to another."""
    return f"{PSYCOPG2_SCHEME}://" + uri.split("://", 1)[1]


def optuna_storage_url(settings: Settings) -> str:
    """Where tuning studies live.

    ``evaluation.tuning_storage`` when set; else, when the tracking store is PostgreSQL, the same
    database in a schema ``optuna`` (Optuna and MLflow both keep an ``alembic_version`` table, so
    they cannot share one schema); else ``sqlite:///.segue/optuna.db``.
    """
    if settings.evaluation.tuning_storage:
        return prepare_store_uri(settings.evaluation.tuning_storage)
    tracking = settings.tracking.tracking_uri
    if postgres_dsn(tracking) is not None:
        url = psycopg2_url(tracking)
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}{_OPTUNA_SEARCH_PATH}"
    return prepare_store_uri(DEFAULT_OPTUNA_STORAGE)


def optuna_schema_database(url: str) -> str | None:
    """The database URL (without the search path) when ``url`` puts studies in the ``optuna``
    schema of a PostgreSQL database, which must then be created first; else None."""
    if not url.startswith("postgresql") or _OPTUNA_SEARCH_PATH not in url:
        return None
    return url.split(_OPTUNA_SEARCH_PATH)[0].rstrip("?&")
