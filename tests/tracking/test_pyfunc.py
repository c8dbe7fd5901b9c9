"""A package logged as one MLflow pyfunc model: Segue's loader, its server and MLflow's generic
loader agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from lifecycle_support import free_port, stop_process_group, wait_until_answers
from segue.ranking.ban_list import BanListFile
from segue.ranking.postprocess import PostProcessConfig
from segue.serving.recommender import ListRules, ModelVersion, ServingModel
from segue.settings import load_settings
from segue.tracking.package_cache import PACKAGE_SUBDIR, cache_dir, load_version
from segue.tracking.pyfunc import SeguePyfuncModel, pip_requirements
from segue.tracking.registry import Registry


def test_the_pyfunc_model_answers_histories_with_top_k_keys(registry: Registry, make_package):
    version = registry.publish(make_package(0.3))
    model = mlflow.pyfunc.load_model(f"models:/{version.name}@challenger")

    signature = model.metadata.signature
    assert [spec.name for spec in signature.inputs] == ["history", "user"]
    assert [spec.name for spec in signature.outputs] == ["items", "scores"]
    assert signature.params.to_dict() == [
        {"name": "k", "type": "long", "default": 10, "shape": None}
    ]

    history = ["artist 0 - song 0", "artist 1 - song 1", "not in the catalogue"]
    answer = model.predict(pd.DataFrame({"history": [history, []]}), params={"k": 3})
    assert list(answer.columns) == ["items", "scores"]
    first, empty = answer["items"].tolist()
    assert len(first) == 3 and len(empty) == 3
    assert not set(first) & set(history), "history items are never recommended"
    assert list(answer["scores"][0]) == sorted(answer["scores"][0], reverse=True)

    # Segue's own loader serves the same scores for the same history.
    _, package = load_version(registry, "next-song", version.version)
    keys = package.items["key"].tolist()
    scores = package.scorer.score([[0, 1]])[0]
    ranked = [keys[i] for i in np.argsort(-scores, kind="stable") if i not in (0, 1)][:3]
    assert first == ranked


def test_a_known_user_gets_unseen_items(registry: Registry, make_package):
    package = make_package(task="user-items")
    version = registry.publish(package)
    model = mlflow.pyfunc.load_model(version.uri)
    seen = {package.items["key"][i] for i in package.user_histories["p0"]}
    answer = model.predict(pd.DataFrame({"user": ["p0"]}), params={"k": 4})
    assert len(answer["items"][0]) == 4
    assert not set(answer["items"][0]) & seen
    unknown = model.predict(pd.DataFrame({"user": ["nobody"]}), params={"k": 2})
    assert len(unknown["items"][0]) == 2


def test_the_logged_model_carries_an_input_example_and_explicit_requirements(
    registry: Registry, make_package
):
    version = registry.publish(make_package(0.3))
    load_version(registry, "next-song", version.version)
    root = cache_dir(registry.settings, version)
    example = json.loads((root / "serving_input_example.json").read_text())
    assert example["dataframe_split"]["columns"] == ["history"]
    requirements = (root / "requirements.txt").read_text().split()
    assert set(pip_requirements()) <= set(requirements)
    assert not (root / "python_model.pkl").exists(), "logged from code: nothing to unpickle"
    package_files = {p.name for p in (root / PACKAGE_SUBDIR).iterdir()}
    assert {"package.json", "items.parquet", "users.parquet", "model"} <= package_files


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(registry: Registry, make_package):
    version = registry.publish(make_package(0.3))
    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = Path("models-serve.log")
    command = [str(mlflow_cli), "models", "serve", "-m", version.uri, "--env-manager", "local"]
    env = {
        **os.environ,
        # As in an activated virtualenv: the scoring server is started as `uvicorn`.
        "PATH": f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri(),
    }
    with log.open("w") as output:
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_answers(f"{base}/ping", server, log)
        body = {
            "dataframe_split": {"columns": ["history"], "data": [[["artist 0 - song 0"]]]},
            "params": {"k": 2},
        }
        response = httpx.post(f"{base}/invocations", json=body, timeout=30.0)
        assert response.status_code == 200, response.text
        (prediction,) = response.json()["predictions"]
        assert prediction["items"] == ["artist 0 - song 9", "artist 2 - song 8"]
    finally:
        stop_process_group(server)


@pytest.mark.parametrize("max_per_artist", [0, 1])
def test_the_pyfunc_model_ranks_like_the_server(make_package, max_per_artist: int):
    """``mlflow models serve`` and ``segue serve`` give the same list for the same input: the
    history excluded, the ban list (item and artist lines), the per-artist cap, the fallback."""
    Path("ban.txt").write_text("artist 0 - song 9\nartist:Artist 1\n", encoding="utf-8")
    settings = load_settings(
        "dev", [f"serving.max_per_artist={max_per_artist}", "serving.ban_list_file=ban.txt"]
    )
    package = make_package(task="user-items")
    model = SeguePyfuncModel()
    model.prepare(package, settings)
    server = ServingModel("user-items", ModelVersion("test", "1"), package, 85.0)
    rules = ListRules(
        PostProcessConfig.from_settings(settings.serving),
        BanListFile(settings.serving.ban_list_file).current(),
    )
    k = 4

    def served(request) -> tuple[list[str], list[float]]:
        items = server.recommend(request).items
        return [server.keys[entry.item] for entry in items], [entry.score for entry in items]

    history = ["artist 0 - song 0", "artist 2 - song 2", "not in the catalogue"]
    answer = model.predict(None, pd.DataFrame({"history": [history, []]}), params={"k": k})
    for row, given in enumerate([history, []]):
        keys, scores = served(server.history_request(given, k, rules))
        assert answer["items"][row] == keys
        assert answer["scores"][row] == pytest.approx(scores)
    assert "artist 0 - song 9" not in answer["items"][1]
    assert not any(key.startswith("artist 1 ") for key in answer["items"][1])

    for user in ("p0", "nobody"):
        answer = model.predict(None, pd.DataFrame({"user": [user]}), params={"k": k})
        keys, scores = served(server.user_request(user, k, rules))
        assert answer["items"][0] == keys
        assert answer["scores"][0] == pytest.approx(scores)
