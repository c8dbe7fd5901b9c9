"""`segue demo`: the whole job on the bundled sample, then the API and page on the result."""

from __future__ import annotations

from typing import Annotated

import typer

from segue.cli.context import fail, get_context, print_wide
from segue.cli.lifecycle import pipeline_table
from segue.tracking.stores import absolute_store


def demo(
    ctx: typer.Context,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Run the job and exit without serving.")
    ] = False,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to serve on (default serving.port).")
    ] = None,
) -> None:
    """Ingest the bundled playlists and ratings, train, evaluate, register, promote, and serve."""
    from segue.jobs.pipeline import run_pipeline
    from segue.sample.synth import sample_path, write_demo_ratings

    settings = absolute_store(get_context(ctx).settings())
    sources = {
        "next-song": sample_path("playlists.json"),
        "user-items": write_demo_ratings(settings.data.root / "demo-ratings"),
    }
    summaries = []
    for task, source in sources.items():
        typer.secho(f"\n== {task}: sample {source}", bold=True)
        summary = run_pipeline(settings, task, source)
        print_wide(pipeline_table(summary))
        summaries.append(summary)
        if not summary.ok:
            fail(f"demo stopped: {task} {summary.error}")

    typer.secho("\nWhere to look", bold=True)
    for summary in summaries:
        typer.echo(
            f"  {summary.task}: dataset {summary.dataset_dir} "
            f"(dataset.json, rejected.jsonl); champion version {summary.champion}"
        )
    typer.echo(
        f"  runs and registry: mlflow ui --backend-store-uri {settings.tracking.tracking_uri}"
    )
    typer.echo("  versions and metrics: segue models list --task next-song")
    if no_serve:
        typer.echo("  serve the champions: segue serve")
        return

    import uvicorn

    from segue.serving.app import create_app

    bind_port = port or settings.serving.port
    typer.secho(
        f"\nServing on http://{settings.serving.host}:{bind_port}  (page at /, docs at "
        "/docs, metrics at /metrics; Ctrl+C stops)",
        bold=True,
    )
    uvicorn.run(
        create_app(settings), host=settings.serving.host, port=bind_port, log_level="warning"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
