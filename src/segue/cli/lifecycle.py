"""`segue promote`, `segue rollback`, `segue models list`, `segue pipeline run`: the model lifecycle.

Thin edges over ``segue.jobs.promote``, ``segue.jobs.pipeline`` and ``segue.tracking.registry``.
Against a tracking server these commands fail fast: no HTTP retries and a short timeout
(``tracking.request_timeout_seconds``), unless MLFLOW_HTTP_REQUEST_* is already set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segue.cli.context import EXIT_BAD_INPUT, EXIT_FAILED, fail, get_context, print_wide
from segue.settings import Settings

if TYPE_CHECKING:
    from segue.jobs.pipeline import PipelineSummary
    from segue.tracking.promotion import PromotionResult
    from segue.tracking.registry import VersionInfo

TaskOption = Annotated[str, typer.Option("--task", help="next-song or user-items.")]
KEY_METRICS = ("ndcg", "recall", "hit_rate", "mrr")

models_app = typer.Typer(help="Inspect registered model versions.", no_args_is_help=True)
pipeline_app = typer.Typer(help="The retraining job a scheduler runs.", no_args_is_help=True)


def _settings(ctx: typer.Context, task: str) -> Settings:
    from segue.models.base import TASKS

    if task not in TASKS:
        fail(f"unknown task {task!r}; expected one of {', '.join(TASKS)}", code=EXIT_BAD_INPUT)
    settings = get_context(ctx).settings()
    # A scheduler would rather see a clear failure now than MLflow's minutes of retries.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault(
        "MLFLOW_HTTP_REQUEST_TIMEOUT", str(settings.tracking.request_timeout_seconds)
    )
    return settings


@contextmanager
def _reported_errors() -> Iterator[None]:
    """A registry or gate problem exits 1; an unknown metric, model or bad data exits 2."""
    from segue.tracking.registry import RegistryError

    try:
        yield
    except RegistryError as error:
        fail(str(error), code=EXIT_FAILED)
    except ValueError as error:
        fail(str(error), code=EXIT_BAD_INPUT)


def promote(
    ctx: typer.Context,
    task: TaskOption,
    metric: Annotated[
        str | None,
        typer.Option("--metric", help="Metric to compare (default: tracking.promotion_metric)."),
    ] = None,
    min_gain: Annotated[
        float | None,
        typer.Option(
            "--min-gain",
            help="The challenger must beat the champion by more than this "
            "(default: tracking.promotion_min_gain).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and print; move no alias, write no tag.")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Dataset to re-evaluate both on when they were evaluated on different data.",
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Gate this version instead of the challenger alias."),
    ] = None,
) -> None:
    """Champion/challenger gate: the challenger becomes champion only if it is better."""
    from segue.jobs.promote import promote as run_gate
    from segue.tracking.promotion import metric_direction
    from segue.tracking.registry import RegistryError

    settings = _settings(ctx, task)
    try:
        metric_direction(metric or settings.tracking.promotion_metric)
    except RegistryError as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    with _reported_errors():
        result = run_gate(
            settings,
            task,
            version=version,
            metric=metric,
            min_gain=min_gain,
            dry_run=dry_run,
            data_dir=data,
        )
    print_wide(_comparison_table(result, settings.evaluation.k))
    typer.echo(_verdict(result))


def rollback(ctx: typer.Context, task: TaskOption) -> None:
    """Give the champion alias back to the previous champion."""
    from segue.jobs.promote import rollback as run_rollback

    settings = _settings(ctx, task)
    with _reported_errors():
        result = run_rollback(settings, task)
    typer.echo(
        f"{result.name}: champion moved back from version {result.from_version} "
        f"to version {result.to_version}"
    )


@models_app.command("list")
def list_models(ctx: typer.Context, task: TaskOption) -> None:
    """Every registered version of the task's model: aliases, provenance and key metrics."""
    from segue.tracking.registry import open_registry

    settings = _settings(ctx, task)
    with _reported_errors():
        registry = open_registry(settings)
        versions = registry.list_versions(task)
        registered_name = registry.registered_name(task)
    if not versions:
        typer.echo(f"{registered_name} has no registered versions yet")
        return
    print_wide(_versions_table(registered_name, versions, settings))


@pipeline_app.command("run")
def run(
    ctx: typer.Context,
    task: TaskOption,
    data: Annotated[
        Path,
        typer.Option("--data", help="Raw playlists or ratings, or an ingested dataset directory."),
    ],
    algorithm: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Algorithm to train (default: training.default_algorithm_<task>: "
            "markov for next-song, ease for user-items).",
        ),
    ] = None,
    protocol: Annotated[
        str | None, typer.Option("--protocol", help="Split protocol (default: the task's).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where raw data is ingested (default: <data.root>/pipeline/T)."),
    ] = None,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Stop after registering the challenger.")
    ] = False,
) -> None:
    """Ingest -> train -> evaluate -> register -> promote; exits 1 when a step fails."""
    from segue.jobs.pipeline import run_pipeline

    settings = _settings(ctx, task)
    with _reported_errors():
        summary = run_pipeline(
            settings,
            task,
            data,
            algorithm=algorithm,
            protocol=protocol,
            dataset_dir=out,
            promote=not no_promote,
        )
    print_wide(pipeline_table(summary))
    typer.echo(f"champion: version {summary.champion}" if summary.champion else "champion: none")
    if not summary.ok:
        fail(f"pipeline stopped: {summary.error}; the champion was not touched")


def _comparison_table(result: PromotionResult, k: int) -> Any:
    from rich.table import Table

    champion = result.champion
    direction = "higher is better" if result.higher_is_better else "lower is better"
    table = Table(
        title=f"{result.name}: challenger vs champion",
        caption=f"gate metric {result.metric} ({direction}), min gain {result.min_gain:g}; "
        f"compared on {result.evaluated_on}",
    )
    table.add_column("metric")
    table.add_column(f"champion v{champion.version}" if champion else "champion (none)")
    table.add_column(f"challenger v{result.challenger.version}")
    table.add_column("change", justify="right")
    keys = [result.metric] + [
        key
        for key in (f"{name}_at_{k}" for name in KEY_METRICS)
        if key != result.metric and key in result.challenger_metrics
    ]
    for key in keys:
        new = result.challenger_metrics.get(key)
        old = result.champion_metrics.get(key) if champion else None
        change = f"{new - old:+.4f}" if new is not None and old is not None else ""
        label = f"[bold]{key}[/bold]" if key == result.metric else key
        table.add_row(label, _number(old), _number(new), change)
    return table


def _verdict(result: PromotionResult) -> str:
    version = result.challenger.version
    if result.dry_run:
        outcome = "would promote" if result.promoted else "would keep the champion"
        return f"dry run: {outcome} ({result.reason}); nothing was moved"
    if result.moved:
        previous = result.champion.version if result.champion else "none"
        return f"promoted version {version} to champion ({result.reason}); previous: {previous}"
    return f"version {version} not promoted: {result.reason}"


def _versions_table(registered_name: str, versions: list[VersionInfo], settings: Settings) -> Any:
    from rich.table import Table

    from segue.jobs.pipeline import TAG_EVALUATED_ON, describe_fit
    from segue.tracking.promotion import gate_status

    k = settings.evaluation.k
    metric_keys = [f"{metric}_at_{k}" for metric in KEY_METRICS]
    table = Table(
        title=f"{registered_name}: registered versions",
        caption="fit on: the rows the registered model was fit on; "
        "metrics: its evaluation on the split named in evaluated on",
    )
    columns = ("version", "aliases", "algorithm", "registered (UTC)", "dataset", "fit on")
    for column in (*columns, "evaluated on"):
        table.add_column(column)
    for key in metric_keys:
        table.add_column(key, justify="right")
    table.add_column("gate")
    for info in versions:
        metrics = info.metrics
        created = datetime.fromtimestamp(info.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            info.version,
            ", ".join(info.aliases),
            info.algorithm,
            created,
            info.dataset_fingerprint[:12],
            describe_fit(info) or "?",
            info.tags.get(TAG_EVALUATED_ON) or info.protocol,
            *[_number(metrics.get(key)) for key in metric_keys],
            gate_status(info.tags),
        )
    return table


def pipeline_table(summary: PipelineSummary) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"pipeline {summary.task} / {summary.algorithm} on {summary.data_path}")
    for column in ("step", "status", "seconds", "detail"):
        table.add_column(column)
    colours = {"ok": "green", "failed": "red", "skipped": "dim"}
    for step in summary.steps:
        status = f"[{colours[step.status]}]{step.status}[/]"
        table.add_row(step.name, status, f"{step.seconds:.1f}", escape(step.detail))
    return table


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def register(app: typer.Typer) -> None:
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.add_typer(models_app, name="models")
    app.add_typer(pipeline_app, name="pipeline")
