"""The tuning job: trials on the validation metric, nested runs, the best config written, studies
resumed."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from segue.data.dataset import Dataset
from segue.jobs.tune import SEARCH_SPACES, TuningError, search_space_for, tune
from segue.models.base import MODEL_NAMES, create_model, model_class
from segue.models.tuned import load_tuned_params, resolve_params
from segue.settings import load_settings
from segue.tracking.runs import open_tracking

SMALL = ["evaluation.holdout_per_user=3", "evaluation.cutoffs=[10]"]


def test_two_trials_write_the_best_config_and_a_rerun_resumes_the_study(
    tmp_path: Path, make_ratings: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    settings = load_settings(overrides=[*SMALL, *tracking_overrides])
    dataset = make_ratings(tmp_path / "ratings")
    first = tune(settings, "user-items", "ease", dataset.directory, trials=2, progress=False)
    assert (first.n_trials, first.new_trials) == (2, 2)
    assert first.storage == "sqlite:///.segue/optuna.db"
    assert first.tuned_path == Path(".segue/tuned/user-items/ease.toml")
    written = tomllib.loads(first.tuned_path.read_text(encoding="utf-8"))
    assert written["models"]["ease"] == first.best_params
    assert set(first.best_params) == {"l2"}
    assert load_tuned_params(settings, "user-items", "ease") == first.best_params
    assert resolve_params(settings, "user-items", "ease") == first.best_params

    store = open_tracking(settings)
    trials = store.client.search_runs(
        [store.experiment_id], f"tags.mlflow.parentRunId = '{first.parent_run_id}'"
    )
    assert len(trials) == 2
    assert all("validation_ndcg_at_10" in run.data.metrics for run in trials)
    assert max(run.data.metrics["validation_ndcg_at_10"] for run in trials) == pytest.approx(
        first.best_value
    )

    again = tune(
        settings,
        "user-items",
        "ease",
        dataset.directory,
        trials=1,
        study_name=first.study_name,
        track=False,
        progress=False,
    )
    assert again.study_name == first.study_name
    assert (again.n_trials, again.new_trials) == (3, 1)
    assert again.best_value >= first.best_value


def test_every_tunable_model_has_a_valid_space_over_its_own_fields() -> None:
    import optuna

    for name in MODEL_NAMES:
        fields = model_class(name).config_class.model_fields
        if name not in SEARCH_SPACES:
            with pytest.raises(TuningError):
                search_space_for(name)
            continue
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(3):
            suggested = search_space_for(name)(study.ask())
            assert set(suggested) <= set(fields), name
            create_model(name, suggested)  # every suggestion passes the config's validation


def test_a_model_without_hyperparameters_cannot_be_tuned(
    tmp_path: Path, make_ratings: Callable[..., Dataset]
) -> None:
    dataset = make_ratings(tmp_path / "ratings")
    with pytest.raises(TuningError, match="no hyperparameters"):
        tune(
            load_settings(overrides=SMALL),
            "user-items",
            "most-popular",
            dataset.directory,
            trials=1,
        )


@pytest.mark.postgres
def test_studies_live_in_an_optuna_schema_of_a_postgresql_tracking_database(
    tmp_path: Path, make_ratings: Callable[..., Dataset]
) -> None:
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"segue_tuning_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3)
    except psycopg2.OperationalError:
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        uri = f"postgresql://postgres@127.0.0.1:5432/{name}"
        settings = load_settings(overrides=[*SMALL, f"tracking.tracking_uri={uri}"])
        dataset = make_ratings(tmp_path / "ratings")
        result = tune(
            settings, "user-items", "ease", dataset.directory, trials=1, track=False, progress=False
        )
        assert result.n_trials == 1
        with psycopg2.connect(uri) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT table_schema FROM information_schema.tables "
                "WHERE table_name = 'studies'"
            )
            assert cursor.fetchall() == [("optuna",)]
        connection.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()
