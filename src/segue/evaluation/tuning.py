"""Hyperparameter search with Optuna on the validation metric (never test), resumable.

Search spaces: ``SEARCH_SPACES`` maps a model name to a function ``(trial) -> params``. A model's
config class may declare its own ``search_space(trial)`` classmethod, which then wins, so a model
family can own its space without editing this file. Epoch counts are not searched: every neural
model stops early on the same validation metric.

Every trial is a nested MLflow run under one parent run per ``segue tune`` invocation. The best
trial's parameters go to ``<evaluation.tuned_dir>/<task>/<model>.toml``, which ``segue train``
reads as a layer above the settings and below ``--set``.

Studies persist in an Optuna RDB storage so a search can be resumed (same ``--study-name``):
``evaluation.tuning_storage`` when set; else, when the tracking store is PostgreSQL, the same
database in a schema ``optuna`` (Optuna and MLflow both keep an ``alembic_version`` table, so they
cannot share one schema); else ``sqlite:///.segue/optuna.db``.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue.settings import Settings, SettingsError

if TYPE_CHECKING:
    import optuna

    from segue.training_job import TrainingResult

logger = logging.getLogger(__name__)

SearchSpace = Callable[["optuna.Trial"], dict[str, Any]]
DEFAULT_STORAGE = "sqlite:///.segue/optuna.db"
OPTUNA_SCHEMA = "optuna"


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
    """A model without a search space, or a study that cannot be opened."""


def search_space_for(model_name: str) -> SearchSpace:
    """The config class's own ``search_space`` when it declares one, else the registry's."""
    from segue.models.base import model_class

    config_class = model_class(model_name).config_class
    declared = getattr(config_class, "search_space", None)
    if callable(declared):
        return declared
    if model_name not in SEARCH_SPACES:
        raise TuningError(f"model {model_name!r} has no hyperparameters to tune")
    return SEARCH_SPACES[model_name]


# -- the tuned-config file ---------------------------------------------------------------------


def tuned_config_path(settings: Settings, task: str, model_name: str) -> Path:
    return Path(settings.evaluation.tuned_dir) / task / f"{model_name}.toml"


def load_tuned_params(settings: Settings, task: str, model_name: str) -> dict[str, Any]:
    """The tuned ``[models.<name>]`` table for a task, or ``{}`` when none was written."""
    path = tuned_config_path(settings, task, model_name)
    if not path.exists():
        return {}
    try:
        tree = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from error
    table = tree.get("models", {}).get(model_name, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [models.{model_name}] must be a table")
    return table


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    raise TypeError(f"cannot write {value!r} to TOML")


def write_tuned_params(
    settings: Settings,
    task: str,
    model_name: str,
    params: dict[str, Any],
    *,
    comment_lines: list[str],
) -> Path:
    """Write the tuned table where ``segue train`` reads it; returns the path."""
    path = tuned_config_path(settings, task, model_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}" for line in comment_lines]
    lines += ["", f'[models."{model_name}"]']
    lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(params.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the study ---------------------------------------------------------------------------------


def tuning_storage_url(settings: Settings) -> str:
    """Where studies live (see the module docstring for the rule)."""
    from segue.tracking.runs import prepare_store_uri

    if settings.evaluation.tuning_storage:
        return prepare_store_uri(settings.evaluation.tuning_storage)
    tracking = settings.tracking.tracking_uri
    if tracking.startswith(("postgresql://", "postgresql+psycopg2://")):
        # psycopg2 is the PostgreSQL driver Segue installs; name it so SQLAlchemy does not
        # fall back to another one.
        url = "postgresql+psycopg2://" + tracking.split("://", 1)[1]
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}options=-csearch_path%3D{OPTUNA_SCHEMA}"
    return prepare_store_uri(DEFAULT_STORAGE)


def _open_storage(url: str) -> Any:
    import optuna

    if url.startswith("postgresql") and f"search_path%3D{OPTUNA_SCHEMA}" in url:
        import sqlalchemy

        base = url.split(f"options=-csearch_path%3D{OPTUNA_SCHEMA}")[0].rstrip("?&")
        engine = sqlalchemy.create_engine(base)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
        engine.dispose()
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as error:  # SQLAlchemy and Optuna raise many kinds
        raise TuningError(f"cannot open the study storage {url}: {error}") from error


def default_study_name(task: str, model_name: str, protocol: str, fingerprint: str) -> str:
    """Same task, model, protocol and data -> same study, so re-running resumes it."""
    return f"{task}.{model_name}.{protocol}.{fingerprint}"


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


def tune(
    settings: Settings,
    task: str,
    model_name: str,
    dataset_dir: str | Path,
    *,
    trials: int,
    study_name: str | None = None,
    protocol: str | None = None,
    track: bool = True,
    progress: bool = True,
) -> TuningResult:
    """Run ``trials`` more trials of a (possibly resumed) study and write the best config.

    Each trial fits on the training part of one fixed split and is scored on its validation
    cases: ``validation`` ``ndcg_at_<k>``, with ``k`` from the settings. Test cases are never
    looked at.
    """
    import optuna

    from segue.training_job import (
        check_task_and_model,
        load_dataset,
        prepare_split,
        train_on_split,
    )

    if trials < 1:
        raise TuningError("--trials must be at least 1")
    check_task_and_model(task, model_name)
    space = search_space_for(model_name)
    fields = set(model_class_fields(model_name))
    dataset = load_dataset(dataset_dir)
    split = prepare_split(settings, task, dataset, protocol)
    if not len(split.validation):
        raise TuningError(f"{dataset.directory}: the split has no validation cases to tune on")
    metric = f"ndcg_at_{settings.evaluation.k}"
    name = study_name or default_study_name(task, model_name, split.protocol, dataset.fingerprint)
    storage_url = tuning_storage_url(settings)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=_open_storage(storage_url),
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=settings.evaluation.seed),
        load_if_exists=True,
    )
    base_params = settings.model_params(model_name)

    store, parent_run_id = None, None
    if track:
        from segue.tracking.runs import open_tracking

        store = open_tracking(settings)
        parent_run_id = store.start_run(
            f"tune {task}/{model_name}",
            {
                "segue.task": task,
                "segue.model": model_name,
                "segue.study": name,
                "dataset_fingerprint": dataset.fingerprint,
                "split_protocol": split.protocol,
            },
        )

    def objective(trial: optuna.Trial) -> float:
        suggested = {k: v for k, v in space(trial).items() if k in fields}
        result: TrainingResult = train_on_split(
            settings,
            task,
            model_name,
            dataset,
            split,
            params={**base_params, **suggested},
            track=track,
            store=store,
            parent_run_id=parent_run_id,
            run_name=f"trial {trial.number}",
            progress=False,
        )
        trial.set_user_attr("run_id", result.run_id or "")
        trial.set_user_attr("fit_seconds", result.fit_seconds)
        return result.validation_metrics[metric]

    before = len(study.trials)
    failed = False
    try:
        study.optimize(objective, n_trials=trials, show_progress_bar=progress)
    except BaseException:
        failed = True
        raise
    finally:
        if store is not None and parent_run_id is not None:
            store.finish_run(parent_run_id, failed=failed)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise TuningError(f"study {name!r} has no completed trial")
    best = study.best_trial
    best_params = {k: v for k, v in best.params.items() if k in fields}
    tuned_path = write_tuned_params(
        settings,
        task,
        model_name,
        best_params,
        comment_lines=[
            f"Written by `segue tune` on {datetime.now(UTC).isoformat(timespec='seconds')}.",
            f"Study {name!r} in {storage_url}: best of {len(study.trials)} trials,",
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
        len(study.trials),
        len(study.trials) - before,
        tuned_path,
        parent_run_id,
    )


def model_class_fields(model_name: str) -> list[str]:
    from segue.models.base import model_class

    return list(model_class(model_name).config_class.model_fields)
