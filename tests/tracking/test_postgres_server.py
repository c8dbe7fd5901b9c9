"""The whole lifecycle against a real `mlflow server` backed by PostgreSQL (the team setup)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from lifecycle_support import chain_dataset, free_port, stop_process_group, wait_until_answers
from segue.jobs.promote import promote, rollback
from segue.jobs.train import package_from_training, run_training
from segue.settings import Settings, load_settings
from segue.tracking.locks import promotion_lock
from segue.tracking.package_cache import load_champion
from segue.tracking.promotion import PromotionError
from segue.tracking.registry import CHALLENGER, open_registry

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def admin_connection():
    import psycopg2

    try:
        connection = psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=3)
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 as postgres: {error}")
    connection.autocommit = True
    return connection


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A fresh database and an `mlflow server` on it, for this module only; both removed after."""
    database = f"segue_test_{uuid.uuid4().hex[:12]}"
    admin = admin_connection()
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{database}"')
    root = tmp_path_factory.mktemp("mlflow-server")
    log = root / "server.log"
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_cli), "server",
        # SQLAlchemy's default PostgreSQL driver is psycopg 3; Segue ships psycopg2.
        "--backend-store-uri", f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
        "--artifacts-destination", str(root / "artifacts"),
        "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "PATH": f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("w") as output:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        uri = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{uri}/health", server, log)
        yield {"uri": uri, "database": f"{POSTGRES}/{database}"}
    finally:
        stop_process_group(server)
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}"')
        admin.close()


@pytest.fixture
def server_settings(tracking_server: dict[str, str], request: pytest.FixtureRequest) -> Settings:
    """Settings on the server, with a model name of the test's own and the advisory lock."""
    suffix = request.node.name.replace("_", "-")[-40:]
    return load_settings(
        "dev",
        [
            f"tracking.tracking_uri={tracking_server['uri']!r}",
            f"tracking.lock_uri={tracking_server['database']!r}",
            f"tracking.registered_name_next_song='{{env}}.{suffix}'",
        ],
    )


def train_and_register(settings: Settings, model: str, data: Path):
    result = run_training(settings, "next-song", model, data, track=True, progress=False)
    return open_registry(settings).publish(package_from_training(result), run_id=result.run_id)


def test_train_register_promote_refuse_rollback_load(server_settings: Settings):
    settings = server_settings
    registry = open_registry(settings)
    data = chain_dataset(Path("data")).directory
    baseline = train_and_register(settings, "most-popular", data)
    assert baseline.aliases == (CHALLENGER,) and baseline.run_id
    assert promote(settings, "next-song").moved

    better = train_and_register(settings, "markov", data)
    promoted = promote(settings, "next-song")
    assert promoted.moved and promoted.challenger_value > promoted.champion_value
    assert registry.resolve_champion("next-song").version == better.version

    worse = train_and_register(settings, "most-popular", data)
    refused = promote(settings, "next-song")
    assert not refused.moved and refused.challenger.version == worse.version
    assert registry.resolve_champion("next-song").version == better.version

    back = rollback(settings, "next-song")
    assert back.to_version == baseline.version
    info, package = load_champion(registry, "next-song")
    assert info.version == baseline.version and package.algorithm == "most-popular"
    with pytest.raises(PromotionError, match="no previous champion"):
        rollback(settings, "next-song")

    # MLflow's own loader reads the same champion through the server's artifact proxy.
    served = mlflow.pyfunc.load_model(f"models:/{info.name}@champion")
    answer = served.predict(pd.DataFrame({"history": [["artist 0 - song 0"]]}), params={"k": 3})
    assert len(answer["items"][0]) == 3
    scores = package.scorer.score([[0]])[0]
    best = [str(package.items["key"][i]) for i in np.argsort(-scores, kind="stable") if i != 0]
    assert answer["items"][0][0] == best[0]


def test_promotions_on_a_postgres_store_take_an_advisory_lock(server_settings: Settings):
    with promotion_lock(server_settings, "dev.anything") as kind:
        assert kind == "postgresql advisory lock"
    unreachable = server_settings.model_copy(
        update={
            "tracking": server_settings.tracking.model_copy(
                update={"lock_uri": "postgresql://postgres@127.0.0.1:1/none"}
            )
        }
    )
    with (
        pytest.raises(PromotionError, match="cannot reach the promotion lock database"),
        promotion_lock(unreachable, "dev.anything"),
    ):
        pytest.fail("the lock was taken without its database")
    assert open_registry(server_settings).version_by_alias("dev.anything", "champion") is None
