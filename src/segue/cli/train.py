"""`segue train`, `segue evaluate`, `segue benchmark`, `segue tune`: thin edges over the jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from segue.cli.context import EXIT_BAD_INPUT, EXIT_FAILED, fail, get_context, print_wide
from segue.settings import Settings, SettingsError, load_settings, parse_override

TaskOption = Annotated[str, typer.Option("--task", help="next-song or user-items.")]
DataOption = Annotated[
    Path, typer.Option("--data", help="A dataset directory written by `segue ingest`.")
]
ProtocolOption = Annotated[
    str | None,
    typer.Option(
        "--protocol",
        help="random-holdout, leave-last-one-out, playlist-holdout or temporal "
        "(default: playlist-holdout for next-song, random-holdout for user-items).",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a key, e.g. models.ease.l2=300 (repeatable)."),
]
NoTrackOption = Annotated[bool, typer.Option("--no-track", help="Do not record an MLflow run.")]


def _settings(ctx: typer.Context, overrides: list[str] | None) -> tuple[Settings, list[str]]:
    """Settings with the command's own --set applied after the root ones."""
    cli = get_context(ctx)
    combined = [*cli.overrides, *(overrides or [])]
    try:
        return load_settings(cli.env, combined), combined
    except SettingsError as error:
        fail(str(error), code=EXIT_BAD_INPUT)


def _explicit_model_params(overrides: list[str], algorithm: str) -> dict[str, Any]:
    """``--set models.<algorithm>.<key>=...`` values: they win over a tuned config."""
    prefix = f"models.{algorithm}."
    explicit: dict[str, Any] = {}
    for assignment in overrides:
        dotted, value = parse_override(assignment)
        if dotted.startswith(prefix):
            explicit[dotted[len(prefix) :]] = value
    return explicit


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Bad input (unknown names, unreadable data) exits 2; a failed step exits 1."""
    from segue.data.dataset import DatasetError
    from segue.evaluation.protocols import ProtocolError
    from segue.jobs.engines import EngineError
    from segue.jobs.train import TrainingError
    from segue.jobs.tune import TuningError
    from segue.models.base import ModelError
    from segue.models.distributed import DistributedTrainingError
    from segue.tracking.runs import TrackingError

    bad_input = (
        DatasetError,
        SettingsError,
        ModelError,
        ProtocolError,
        TrainingError,
        TuningError,
        EngineError,
    )
    try:
        yield
    except (TrackingError, DistributedTrainingError) as error:
        fail(str(error), code=EXIT_FAILED)
    except bad_input as error:
        fail(str(error), code=EXIT_BAD_INPUT)


def _metrics_table(title: str, columns: dict[str, dict[str, float]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    keys = sorted({key for metrics in columns.values() for key in metrics}, key=_metric_order)
    for key in keys:
        cells = [f"{metrics[key]:.4f}" if key in metrics else "" for metrics in columns.values()]
        table.add_row(key, *cells)
    return table


def _metric_order(key: str) -> tuple[str, int, str]:
    base, _, k = key.rpartition("_at_")
    return (base.removeprefix("last_"), int(k) if k.isdigit() else 0, key)


def train(
    ctx: typer.Context,
    task: TaskOption,
    data: DataOption,
    algorithm: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The algorithm (model family), e.g. ease or sasrec "
            "(default: training.default_algorithm_<task>, as `segue pipeline run`).",
        ),
    ] = None,
    protocol: ProtocolOption = None,
    overrides: SetOption = None,
    leaky: Annotated[
        bool,
        typer.Option(
            "--leaky",
            help="Reproduce the original design's leak (random-holdout only): train on the "
            "held-out items too. The run is labelled leaky.",
        ),
    ] = False,
    save_model: Annotated[
        Path | None, typer.Option("--save-model", help="Also save the fitted model here.")
    ] = None,
    no_track: NoTrackOption = False,
    register_model: Annotated[
        bool,
        typer.Option(
            "--register",
            help="Then refit on all of the dataset and register it as the task's challenger, "
            "exactly as `segue pipeline run` does; promote it with `segue promote`.",
        ),
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local (this machine; --nproc N runs N torchrun processes) or ray "
            "(Ray Train workers; needs the optional ray extra).",
        ),
    ] = "local",
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            help="Train with N processes on this machine: runs this same command under "
            "torchrun (one rank each, gradients averaged, batch_size per rank).",
        ),
    ] = 1,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Ray Train workers (--engine ray; default distributed.workers).",
        ),
    ] = None,
) -> None:
    """Train a model, evaluate it on validation and test, record an MLflow run; --register
    makes it the challenger."""
    from segue.jobs.pipeline import default_algorithm
    from segue.jobs.train import run_training
    from segue.models.distributed import is_primary_process

    settings, combined = _settings(ctx, overrides)
    if register_model and leaky:
        fail(
            "--register cannot register a --leaky model (it trained on its test targets); "
            "drop --leaky",
            code=EXIT_BAD_INPUT,
        )
    _check_distributed_options(engine, nproc, workers, register_model)
    if nproc > 1:
        _run_under_torchrun(nproc)
    with _reported_errors():
        algorithm = algorithm or default_algorithm(settings, task)
        result = run_training(
            settings,
            task,
            algorithm,
            data,
            protocol=protocol,
            params=_explicit_model_params(combined, algorithm),
            track=not no_track,
            leaky=leaky,
            engine=engine,
            workers=workers,
        )
        if not is_primary_process():
            return  # under torchrun, rank 0 alone reports, saves and records
        if save_model is not None:
            result.model.save(save_model)
    title = f"{task} / {algorithm} on {result.protocol} ({len(result.split.test)} test cases)"
    print_wide(
        _metrics_table(
            title, {"validation": result.validation_metrics, "test": result.test_metrics}
        )
    )
    if result.leaky:
        typer.secho(
            "LEAKY: the model was trained on the held-out items; these figures are inflated.",
            fg=typer.colors.YELLOW,
        )
    typer.echo(f"fit: {result.fit_seconds:.2f} s, peak memory +{result.peak_memory_mb:.1f} MB")
    if save_model is not None:
        typer.echo(f"model saved to {save_model}")
    typer.echo(f"run id: {result.run_id}" if result.run_id else "run id: (not tracked)")
    if register_model:
        _register(settings, task, result)


def _check_distributed_options(
    engine: str, nproc: int, workers: int | None, register_model: bool
) -> None:
    from segue.jobs.engines import ENGINES
    from segue.models.distributed import launched_world

    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}", code=EXIT_BAD_INPUT)
    if engine == "ray" and nproc > 1:
        fail("--nproc is for --engine local; Ray Train takes --workers", code=EXIT_BAD_INPUT)
    if engine == "local" and workers is not None:
        fail("--workers is for --engine ray; local processes take --nproc", code=EXIT_BAD_INPUT)
    under_torchrun = launched_world().is_distributed
    if under_torchrun and (nproc > 1 or engine == "ray"):
        fail(
            "already started by torchrun: drop --nproc and --engine ray (the launcher sets the "
            "processes)",
            code=EXIT_BAD_INPUT,
        )
    if register_model and (nproc > 1 or under_torchrun):
        fail(
            "--register refits on all of the dataset in one process: train with --nproc without "
            "--register, or register with --engine ray or one process",
            code=EXIT_BAD_INPUT,
        )


def _run_under_torchrun(nproc: int) -> None:
    """Replace this process by torchrun running this same command (without --nproc) N times."""
    import os
    import sys

    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "segue",
        *_without_option(sys.argv[1:], "--nproc"),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def _without_option(arguments: list[str], name: str) -> list[str]:
    """``arguments`` without ``name VALUE`` or ``name=VALUE``."""
    kept: list[str] = []
    skip = False
    for argument in arguments:
        if skip:
            skip = False
        elif argument == name:
            skip = True
        elif not argument.startswith(name + "="):
            kept.append(argument)
    return kept


def _register(settings: Settings, task: str, result: Any) -> None:
    """The pipeline's register step on this result; prints the version and the next command."""
    from segue.jobs.pipeline import describe_fit, register_training
    from segue.tracking.registry import RegistryError, open_registry

    try:
        info = register_training(open_registry(settings), result)
    except RegistryError as error:
        fail(f"not registered: {error}", code=EXIT_FAILED)
    typer.echo(
        f"registered {info.name} version {info.version} as challenger "
        f"(refit on {describe_fit(info)}; metrics from {result.protocol} seed {result.split.seed})"
    )
    typer.echo(f"next: segue promote --task {task}")


def evaluate(
    ctx: typer.Context,
    data: DataOption,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="A saved model or model package directory."),
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="An MLflow run id holding a saved model.")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="next-song or user-items.")] = None,
    protocol: ProtocolOption = None,
    overrides: SetOption = None,
) -> None:
    """Re-score a saved model on a dataset's validation and test cases."""
    from segue.jobs.evaluate import rescore_saved_model

    if (model_dir is None) == (run is None):
        fail("give exactly one of --model-dir or --run", code=EXIT_BAD_INPUT)
    settings, _ = _settings(ctx, overrides)
    with _reported_errors():
        result = rescore_saved_model(
            settings, data, model_dir=model_dir, run_id=run, task=task, protocol=protocol
        )
    title = f"{result.model.name} on {result.protocol} ({result.n_test_cases} test cases)"
    print_wide(
        _metrics_table(
            title, {"validation": result.validation_metrics, "test": result.test_metrics}
        )
    )
    if result.unknown_items:
        typer.echo(
            f"{result.unknown_items} dataset items are unknown to the model (count as misses)"
        )


def benchmark(
    ctx: typer.Context,
    task: TaskOption,
    data: DataOption,
    algorithms: Annotated[
        str,
        typer.Option("--models", help="Comma-separated algorithms, e.g. most-popular,ease."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write leaderboard.md, .csv and .png here."),
    ] = None,
    protocol: ProtocolOption = None,
    leaky_algorithms: Annotated[
        str,
        typer.Option(
            "--leaky-models",
            help="Also fit these on the leaky split (random-holdout only), labelled (leaky).",
        ),
    ] = "",
    overrides: SetOption = None,
    no_track: NoTrackOption = False,
) -> None:
    """Fit several models on one split and write a leaderboard with fit time and memory."""
    from segue.evaluation.report import markdown_table
    from segue.jobs.benchmark import run_benchmark

    names = _names(algorithms)
    if not names:
        fail("--models needs at least one model name", code=EXIT_BAD_INPUT)
    settings, _ = _settings(ctx, overrides)
    with _reported_errors():
        result = run_benchmark(
            settings,
            task,
            data,
            names,
            protocol=protocol,
            leaky_algorithms=_names(leaky_algorithms),
            out_dir=out,
            track=not no_track,
        )
    typer.echo(f"# {result.leaderboard.title}\n")
    typer.echo(markdown_table(result.leaderboard.to_frame()))
    for note in result.leaderboard.notes:
        typer.echo(f"- {note}")
    if result.files is not None:
        typer.echo(f"leaderboard written to {result.files.markdown.parent}")
    if result.parent_run_id:
        typer.echo(f"run id: {result.parent_run_id}")
    if result.failures:
        fail(f"{len(result.failures)} model(s) failed: {', '.join(result.failures)}")


def tune(
    ctx: typer.Context,
    task: TaskOption,
    algorithm: Annotated[
        str, typer.Option("--model", help="The algorithm whose search space to explore.")
    ],
    data: DataOption,
    trials: Annotated[int, typer.Option("--trials", help="How many more trials to run.")] = 20,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Worker processes sharing the study (its storage: evaluation.tuning_storage, "
            "or the tracking database when it is PostgreSQL).",
        ),
    ] = 1,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            help="Resume (or start) this study; default: one per task, model, protocol and dataset.",
        ),
    ] = None,
    protocol: ProtocolOption = None,
    overrides: SetOption = None,
    no_track: NoTrackOption = False,
) -> None:
    """Search a model's hyperparameters on the validation metric; write the best config."""
    from segue.jobs.tune import tune as run_tuning

    settings, _ = _settings(ctx, overrides)
    with _reported_errors():
        result = run_tuning(
            settings,
            task,
            algorithm,
            data,
            trials=trials,
            workers=workers,
            study_name=study_name,
            protocol=protocol,
            track=not no_track,
        )
    typer.echo(
        f"study {result.study_name!r}: {result.new_trials} new trials "
        f"({result.workers} worker{'s' if result.workers > 1 else ''}), {result.n_trials} in all "
        f"(storage {result.storage})"
    )
    typer.echo(f"best validation {result.metric}: {result.best_value:.4f}")
    for key, value in sorted(result.best_params.items()):
        typer.echo(f"  {key} = {value}")
    typer.echo(f"best config written to {result.tuned_path} (read by `segue train`)")
    if result.parent_run_id:
        typer.echo(f"run id: {result.parent_run_id}")


def _names(csv: str) -> list[str]:
    return [name.strip() for name in csv.split(",") if name.strip()]


_COMMANDS: tuple[Callable[..., None], ...] = (train, evaluate, benchmark, tune)


def register(app: typer.Typer) -> None:
    for command in _COMMANDS:
        app.command(command.__name__)(command)
