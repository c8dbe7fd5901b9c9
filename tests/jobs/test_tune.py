"""The tuning job: trials on the validation metric, nested runs, the best config written, studies
resumed."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from segue.data.dataset import Dataset
from segue.jobs.tune import SEARCH_SPACES, TuningError, search_space_for, trial_shares, tune
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
    # The tuned values win over the settings table (which may hold keys no search explores).
    expected = {**settings.model_params("ease"), **first.best_params}
    assert resolve_params(settings, "user-items", "ease") == expected

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


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_worker_processes_share_one_study_on_postgresql(
    tmp_path: Path, make_ratings: Callable[..., Dataset]
) -> None:
    import optuna

    psycopg2 = pytest.importorskip("psycopg2")
    name = f"segue_tune_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3)
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 as postgres: {error}")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        # The team setup: MLflow's runs and Optuna's studies in one PostgreSQL database.
        settings = load_settings(
            overrides=[
                *SMALL,
                f"tracking.tracking_uri=postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
                f"tracking.artifact_root={tmp_path / 'artifacts'}",
            ]
        )
        dataset = make_ratings(tmp_path / "ratings")
        result = tune(
            settings, "user-items", "ease", dataset.directory, trials=5, workers=2, progress=False
        )

        assert (result.n_trials, result.new_trials, result.workers) == (5, 5, 2)
        study = optuna.load_study(study_name=result.study_name, storage=result.storage)
        assert sorted(trial.number for trial in study.trials) == [0, 1, 2, 3, 4]
        assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in study.trials)
        assert {trial.user_attrs["worker"] for trial in study.trials} == {0, 1}
        assert result.best_value == study.best_value
        assert result.best_params == study.best_params
        written = tomllib.loads(result.tuned_path.read_text(encoding="utf-8"))
        assert written["models"]["ease"] == study.best_params

        store = open_tracking(settings)
        runs = store.client.search_runs(
            [store.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
        )
        assert sorted(int(run.data.tags["segue.trial"]) for run in runs) == [0, 1, 2, 3, 4]
        assert {run.info.run_id for run in runs} == {t.user_attrs["run_id"] for t in study.trials}
        assert {run.data.tags["segue.tuning_worker"] for run in runs} == {"0", "1"}
    finally:
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def test_trials_are_shared_out_exactly() -> None:
    assert trial_shares(5, 2) == [3, 2]
    assert trial_shares(2, 4) == [1, 1]
    assert sum(trial_shares(17, 3)) == 17


def test_zero_workers_are_refused(tmp_path: Path, make_ratings: Callable[..., Dataset]) -> None:
    dataset = make_ratings(tmp_path / "ratings")
    settings = load_settings(overrides=SMALL)
    with pytest.raises(TuningError, match="--workers"):
        tune(settings, "user-items", "ease", dataset.directory, trials=1, workers=0)
