"""Store URIs: SQLite paths made absolute, PostgreSQL for locks and studies, Optuna's storage."""

from __future__ import annotations

from pathlib import Path

from segue.settings import load_settings
from segue.tracking.stores import (
    absolute_sqlite_uri,
    absolute_store,
    optuna_storage_url,
    postgres_dsn,
    sqlite_path,
)


def test_storage_follows_the_tracking_database() -> None:
    assert optuna_storage_url(load_settings()) == "sqlite:///.segue/optuna.db"
    postgres = load_settings(
        overrides=["tracking.tracking_uri=postgresql://postgres@127.0.0.1:5432/segue"]
    )
    assert optuna_storage_url(postgres) == (
        "postgresql+psycopg2://postgres@127.0.0.1:5432/segue?options=-csearch_path%3Doptuna"
    )
    explicit = load_settings(overrides=["evaluation.tuning_storage=sqlite:///studies.db"])
    assert optuna_storage_url(explicit) == "sqlite:///studies.db"


def test_relative_sqlite_stores_become_absolute_and_others_stay() -> None:
    assert sqlite_path("sqlite:///.segue/mlflow.db?mode=ro") == Path(".segue/mlflow.db")
    assert sqlite_path("http://127.0.0.1:5000") is None
    absolute = absolute_sqlite_uri("sqlite:///.segue/mlflow.db?mode=ro")
    assert absolute == f"sqlite:///{Path.cwd() / '.segue/mlflow.db'}?mode=ro"
    assert absolute_sqlite_uri("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert absolute_sqlite_uri("http://host:5000") == "http://host:5000"
    settings = absolute_store(load_settings())
    assert settings.tracking.tracking_uri == f"sqlite:///{Path.cwd() / '.segue/mlflow.db'}"


def test_postgres_uris_become_libpq_dsns() -> None:
    assert postgres_dsn("postgresql+psycopg2://u@h:5432/db") == "postgresql://u@h:5432/db"
    assert postgres_dsn("postgres://u@h/db") == "postgresql://u@h/db"
    assert postgres_dsn("sqlite:///x.db") is None
