"""The tuning job: an Optuna search on the validation metric (never test), resumable.

Search spaces: ``SEARCH_SPACES`` maps an algorithm to a function ``(trial) -> params``. Epoch
counts are not searched: every neural model stops early on the same validation metric.

The job builds an objective from ``train_on_split`` (fit on the training part of one fixed split,
score on its validation cases) and hands it to ``run_study``, which knows nothing of training.
Every trial is a nested MLflow run under one parent run per ``segue tune`` invocation. The best
trial's parameters go to the tuned config (``segue.models.tuned``), which every training reads
above the settings and below ``--set``.

Studies persist in an Optuna RDB storage (``segue.tracking.stores.optuna_storage_url``) so a
search can be resumed with the same ``--study-name``, and shared: ``--workers N`` runs N worker
processes on the one study (PostgreSQL in the team setup; SQLite serialises their writes, which
is fine on one machine). The parent creates the study, gives each worker its share of the
trials, so the count is exact, and writes the best config once, after every worker has ended.
Trial numbers come from the storage, so none repeats; every worker's trials are nested runs of
the one parent run. The same ``segue tune`` on other machines against the same storage and
``--study-name`` joins the same search.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from segue.data.dataset import Dataset
from segue.data.interactions import Split
from segue.jobs.train import (
    TrainingResult,
    check_task_and_algorithm,
    load_dataset,
    prepare_split,
    train_on_split,
)
from segue.models.base import model_class
from segue.models.tuned import write_tuned_params
from segue.settings import Settings
from segue.tracking.runs import TrackingStore, open_tracking
from segue.tracking.stores import OPTUNA_SCHEMA, optuna_schema_database, optuna_storage_url

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

SearchSpace = Callable[["optuna.Trial"], dict[str, Any]]
Objective = Callable[["optuna.Trial"], float]


def _markov(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "backoff_weight": trial.suggest_float("backoff_weight", 1e-3, 1.0, log=True),
        "history_decay": trial.suggest_float("history_decay", 0.0, 0.9),
        "history_window": trial.suggest_int("history_window", 1, 10),
    }


def _session_knn(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "neighbours": trial.suggest_int("neighbours", 10, 500, log=True),
        "recency_decay": trial.suggest_float("recency_decay", 0.3, 1.0),
    }


def _item_knn(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "neighbours": trial.suggest_int("neighbours", 10, 1000, log=True),
        "shrinkage": trial.suggest_float("shrinkage", 0.0, 200.0),
    }


def _ease(trial: optuna.Trial) -> dict[str, Any]:
    return {"l2": trial.suggest_float("l2", 1.0, 5000.0, log=True)}


def _als(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "factors": trial.suggest_categorical("factors", [16, 32, 64, 128]),
        "regularization": trial.suggest_float("regularization", 1e-3, 1.0, log=True),
        "iterations": trial.suggest_int("iterations", 5, 30),
        "alpha": trial.suggest_float("alpha", 1.0, 100.0, log=True),
    }


def _autoencoder(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "hidden_size": trial.suggest_categorical("hidden_size", [64, 128, 256, 512]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


def _mult_vae(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "hidden_size": trial.suggest_categorical("hidden_size", [200, 400, 600]),
        "latent_size": trial.suggest_categorical("latent_size", [50, 100, 200]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.7),
        "beta_max": trial.suggest_float("beta_max", 0.05, 1.0, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


def _lstm(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "embedding_dim": trial.suggest_categorical("embedding_dim", [16, 32, 64]),
        "hidden_size": trial.suggest_categorical("hidden_size", [32, 64, 128]),
        "num_layers": trial.suggest_int("num_layers", 1, 5),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


def _gru4rec(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "embedding_dim": trial.suggest_categorical("embedding_dim", [32, 64, 128]),
        "hidden_size": trial.suggest_categorical("hidden_size", [64, 100, 200]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


def _sasrec(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "embedding_dim": trial.suggest_categorical("embedding_dim", [32, 64, 128]),
        "num_blocks": trial.suggest_int("num_blocks", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
    }


SEARCH_SPACES: dict[str, SearchSpace] = {
    "markov": _markov,
    "session-knn": _session_knn,
    "item-knn": _item_knn,
    "ease": _ease,
    "als": _als,
    "autoencoder": _autoencoder,
    "mult-vae": _mult_vae,
    "lstm": _lstm,
    "gru4rec": _gru4rec,
    "sasrec": _sasrec,
}


class TuningError(ValueError):
    """An algorithm without a search space, or a study that cannot be opened."""


def search_space_for(algorithm: str) -> SearchSpace:
    if algorithm not in SEARCH_SPACES:
        raise TuningError(f"model {algorithm!r} has no hyperparameters to tune")
    return SEARCH_SPACES[algorithm]


def default_study_name(task: str, algorithm: str, protocol: str, fingerprint: str) -> str:
    """Same task, algorithm, protocol and data -> same study, so re-running resumes it."""
    return f"{task}.{algorithm}.{protocol}.{fingerprint}"


@dataclass
class TuningResult:
    study_name: str
    storage: str
    metric: str
    best_value: float
    best_params: dict[str, Any]
    n_trials: int
    new_trials: int
    tuned_path: Path
    parent_run_id: str | None
    workers: int = 1


@dataclass(frozen=True)
class StudyOutcome:
    """What ``run_study`` leaves: the best trial and how many trials the study holds."""

    best: optuna.trial.FrozenTrial
    n_trials: int
    new_trials: int


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study storage at ``url``, creating the ``optuna`` schema of a PostgreSQL database."""
    import optuna

    database = optuna_schema_database(url)
    if database is not None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(database)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
        engine.dispose()
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as error:  # SQLAlchemy and Optuna raise many kinds
        raise TuningError(f"cannot open the study storage {url}: {error}") from error


def open_study(
    study_name: str, storage_url: str, *, seed: int, shared: bool = False
) -> optuna.Study:
    """The study ``study_name`` (maximised), created on first use.

    A ``shared`` study is run by several processes at once: its sampler pretends the trials
    still running scored badly ("constant liar"), so workers do not all try the same point.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage_url),
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=shared),
        load_if_exists=True,
    )


def run_study(
    study_name: str,
    storage_url: str,
    objective: Objective,
    *,
    trials: int,
    seed: int,
    progress: bool = True,
) -> StudyOutcome:
    """Run ``trials`` more trials of ``objective`` (maximised) in a possibly resumed study."""
    study = open_study(study_name, storage_url, seed=seed)
    before = len(study.trials)
    study.optimize(objective, n_trials=trials, show_progress_bar=progress)
    return _outcome(study, before)


def _outcome(study: optuna.Study, before: int) -> StudyOutcome:
    import optuna

    trials = study.get_trials(deepcopy=False)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in trials):
        raise TuningError(f"study {study.study_name!r} has no completed trial")
    return StudyOutcome(study.best_trial, len(trials), len(trials) - before)


@dataclass(frozen=True)
class TrialPlan:
    """What a worker process needs to run its share of a study's trials (picklable)."""

    settings_json: str
    task: str
    algorithm: str
    dataset_dir: str
    protocol: str | None
    study_name: str
    storage_url: str
    parent_run_id: str | None
    seed: int


def trial_shares(trials: int, workers: int) -> list[int]:
    """``trials`` split over at most ``workers`` workers, as evenly as can be (none gets 0)."""
    base, extra = divmod(trials, workers)
    return [base + (1 if index < extra else 0) for index in range(min(workers, trials))]


def run_shared_study(
    plan: TrialPlan, *, trials: int, workers: int, progress: bool = True
) -> StudyOutcome:
    """Run exactly ``trials`` more trials of the study in ``workers`` worker processes.

    The study is created here first, so the workers only ever load it. The bar follows the
    trials finished in the storage. A worker that fails fails the run once all have ended (the
    trials the others finished stay in the study).
    """
    import optuna

    study = open_study(plan.study_name, plan.storage_url, seed=plan.seed)
    before = len(study.get_trials(deepcopy=False))
    finished = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    done_before = len(study.get_trials(deepcopy=False, states=finished))
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked locks
    processes = [
        context.Process(
            target=run_worker, args=(plan, share, index), name=f"segue-tune-worker-{index}"
        )
        for index, share in enumerate(trial_shares(trials, workers))
    ]
    try:
        for process in processes:
            process.start()
        description = f"tuning ({len(processes)} workers)"
        with tqdm(total=trials, desc=description, unit="trial", disable=not progress) as bar:
            running = list(processes)
            while running:
                multiprocessing.connection.wait([p.sentinel for p in running], timeout=1.0)
                running = [p for p in running if p.is_alive()]
                done = len(study.get_trials(deepcopy=False, states=finished)) - done_before
                if min(done, trials) > bar.n:
                    bar.update(min(done, trials) - bar.n)
    finally:
        for process in processes:
            if process.is_alive():  # the parent was interrupted: its workers end with it
                process.terminate()
            process.join()
    failed = [f"worker {n} (exit code {p.exitcode})" for n, p in enumerate(processes) if p.exitcode]
    if failed:
        raise TuningError(f"tuning failed in {', '.join(failed)}; its error is printed above")
    return _outcome(study, before)


def run_worker(plan: TrialPlan, trials: int, worker: int) -> None:
    """One worker process: ``trials`` trials of the shared study, each a nested run."""
    settings = Settings.model_validate_json(plan.settings_json)
    dataset = load_dataset(plan.dataset_dir)
    split = prepare_split(settings, plan.task, dataset, plan.protocol)
    store = open_tracking(settings) if plan.parent_run_id is not None else None
    objective = trial_objective(
        settings,
        plan.task,
        plan.algorithm,
        dataset,
        split,
        store=store,
        parent_run_id=plan.parent_run_id,
        worker=worker,
    )
    # A seed per worker: the same seed would make every worker start from the same points.
    study = open_study(plan.study_name, plan.storage_url, seed=plan.seed + worker, shared=True)
    study.optimize(objective, n_trials=trials)


def trial_objective(
    settings: Settings,
    task: str,
    algorithm: str,
    dataset: Dataset,
    split: Split,
    *,
    store: TrackingStore | None,
    parent_run_id: str | None,
    worker: int = 0,
) -> Objective:
    """Fit on the split's training part with the trial's parameters; return its validation
    metric. With a ``store``, each trial is a run nested under ``parent_run_id``."""
    space = search_space_for(algorithm)
    fields = set(model_class(algorithm).config_class.model_fields)
    base_params = settings.model_params(algorithm)
    metric = tuning_metric(settings)
    track = store is not None

    def objective(trial: optuna.Trial) -> float:
        suggested = {k: v for k, v in space(trial).items() if k in fields}
        result: TrainingResult = train_on_split(
            settings,
            task,
            algorithm,
            dataset,
            split,
            params={**base_params, **suggested},
            track=track,
            store=store,
            parent_run_id=parent_run_id,
            run_name=f"trial {trial.number}",
            progress=False,
        )
        if store is not None and result.run_id:
            store.set_tags(
                result.run_id, {"segue.trial": trial.number, "segue.tuning_worker": worker}
            )
        trial.set_user_attr("run_id", result.run_id or "")
        trial.set_user_attr("fit_seconds", result.fit_seconds)
        trial.set_user_attr("worker", worker)
        return result.validation_metrics[metric]

    return objective


def tuning_metric(settings: Settings) -> str:
    """What a trial is scored by: validation NDCG at ``evaluation.k``."""
    return f"ndcg_at_{settings.evaluation.k}"


def tune(
    settings: Settings,
    task: str,
    algorithm: str,
    dataset_dir: str | Path,
    *,
    trials: int,
    workers: int = 1,
    study_name: str | None = None,
    protocol: str | None = None,
    track: bool = True,
    progress: bool = True,
) -> TuningResult:
    """Run ``trials`` more trials of a (possibly resumed) study and write the best config.

    Each trial fits on the training part of one fixed split and is scored on its validation
    cases: ``validation`` ``ndcg_at_<k>``, with ``k`` from the settings. Test cases are never
    looked at. ``workers`` > 1 runs the trials in that many worker processes on the one study.
    """
    if trials < 1:
        raise TuningError("--trials must be at least 1")
    if workers < 1:
        raise TuningError("--workers must be at least 1")
    check_task_and_algorithm(task, algorithm)
    search_space_for(algorithm)
    fields = set(model_class(algorithm).config_class.model_fields)
    dataset = load_dataset(dataset_dir)
    split = prepare_split(settings, task, dataset, protocol)
    if not len(split.validation):
        raise TuningError(f"{dataset.directory}: the split has no validation cases to tune on")
    metric = tuning_metric(settings)
    name = study_name or default_study_name(task, algorithm, split.protocol, dataset.fingerprint)
    storage_url = optuna_storage_url(settings)

    store, parent_run_id = None, None
    if track:
        store = open_tracking(settings)
        parent_run_id = store.start_run(
            f"tune {task}/{algorithm}",
            {
                "segue.task": task,
                "segue.model": algorithm,
                "segue.study": name,
                "segue.tuning_workers": str(workers),
                "dataset_fingerprint": dataset.fingerprint,
                "split_protocol": split.protocol,
            },
        )

    failed = False
    try:
        if workers == 1:
            objective = trial_objective(
                settings, task, algorithm, dataset, split, store=store, parent_run_id=parent_run_id
            )
            outcome = run_study(
                name,
                storage_url,
                objective,
                trials=trials,
                seed=settings.evaluation.seed,
                progress=progress,
            )
        else:
            plan = TrialPlan(
                settings_json=settings.model_dump_json(),
                task=task,
                algorithm=algorithm,
                dataset_dir=str(dataset.directory),
                protocol=protocol,
                study_name=name,
                storage_url=storage_url,
                parent_run_id=parent_run_id,
                seed=settings.evaluation.seed,
            )
            outcome = run_shared_study(plan, trials=trials, workers=workers, progress=progress)
    except BaseException:
        failed = True
        raise
    finally:
        if store is not None and parent_run_id is not None:
            store.finish_run(parent_run_id, failed=failed)
    best = outcome.best
    best_params = {k: v for k, v in best.params.items() if k in fields}
    tuned_path = write_tuned_params(
        settings,
        task,
        algorithm,
        best_params,
        comment_lines=[
            f"Written by `segue tune` on {datetime.now(UTC).isoformat(timespec='seconds')}.",
            f"Study {name!r} in {storage_url}: best of {outcome.n_trials} trials,",
            f"validation {metric} = {best.value:.6f} (trial {best.number}, protocol {split.protocol}).",
            "`segue train` reads this above the settings and below --set.",
        ],
    )
    if store is not None and parent_run_id is not None:
        store.log_params(parent_run_id, {f"best_{k}": v for k, v in best_params.items()})
        store.log_metrics(parent_run_id, {f"best_validation_{metric}": float(best.value)})
        store.set_tags(parent_run_id, {"tuned_config": str(tuned_path)})
    return TuningResult(
        name,
        storage_url,
        metric,
        float(best.value),
        best_params,
        outcome.n_trials,
        outcome.new_trials,
        tuned_path,
        parent_run_id,
        workers,
    )
