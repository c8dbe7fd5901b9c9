"""`segue batch recommend`: the champion's top-K lists for every known user (or playlist) as
Parquet; a thin edge over ``segue.jobs.batch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segue.cli.context import EXIT_BAD_INPUT, EXIT_FAILED, fail, get_context
from segue.settings import SettingsError, load_settings

batch_app = typer.Typer(help="Score many users or playlists at once.", no_args_is_help=True)


@batch_app.command("recommend")
def recommend(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", help="next-song or user-items.")],
    out: Annotated[
        Path, typer.Option("--out", help="An empty (or new) directory for the Parquet lists.")
    ],
    engine: Annotated[
        str,
        typer.Option(
            "--engine", help="local (this process) or ray (Ray Data; needs the ray extra of segue)."
        ),
    ] = "local",
    playlists: Annotated[
        Path | None,
        typer.Option(
            "--playlists",
            help="next-song: a playlist file (or directory) in any format `segue ingest` reads.",
        ),
    ] = None,
    k: Annotated[
        int | None,
        typer.Option("--k", help="List length per user (default: serving.default_k)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key, e.g. batch.batch_size=512 (repeatable)."),
    ] = None,
) -> None:
    """Write the champion's list for every known user (user-items) or every playlist of a file
    (next-song), ranked exactly as the server ranks it: user, rank, item, score."""
    from segue.jobs.batch import BatchError, recommend_batch
    from segue.tracking.registry import RegistryError

    cli = get_context(ctx)
    try:
        settings = load_settings(cli.env, [*cli.overrides, *(overrides or [])])
    except SettingsError as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    try:
        result = recommend_batch(settings, task, out, engine=engine, playlists=playlists, k=k)
    except BatchError as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    except RegistryError as error:
        fail(str(error), code=EXIT_FAILED)
    manifest = result.manifest
    typer.echo(
        f"{manifest.lists} {task} lists of up to {manifest.k} items ({manifest.rows} rows) from "
        f"{manifest.registered_name} version {manifest.version} ({manifest.algorithm}), "
        f"{manifest.engine} engine, {result.seconds:.1f} s"
    )
    if result.rejected_playlists or result.duplicate_playlists:
        typer.echo(
            f"skipped {result.rejected_playlists} unreadable playlists and "
            f"{result.duplicate_playlists} repeated playlist ids"
        )
    typer.echo(f"written to {result.out_dir}")


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
