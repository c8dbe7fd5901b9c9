"""`segue ingest playlists|ratings`: raw files in, a clean dataset plus rejected.jsonl out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from segue.cli.context import EXIT_BAD_INPUT, fail, get_context

if TYPE_CHECKING:
    from segue.data.ingest import IngestResult

ingest_app = typer.Typer(
    help="Turn raw playlists or MovieLens ratings into a clean dataset.", no_args_is_help=True
)

OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Dataset directory (default: <data.root>/<playlists|ratings>)."),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Stop at the first bad record (exit 2) instead of rejecting it."),
]


def _print_summary(result: IngestResult) -> None:
    from rich.console import Console
    from rich.table import Table

    manifest = result.dataset.manifest
    counts = manifest["counts"]
    rows = [("input", counts["input"])] + [(s["stage"], s["after"]) for s in manifest["stages"]]
    units = list(dict.fromkeys(unit for _, sizes in rows for unit in sizes))
    table = Table(title=f"segue ingest {manifest['kind']}: what is left after each stage")
    table.add_column("stage")
    for unit in units:
        table.add_column(unit, justify="right")
    for stage, sizes in rows:
        table.add_row(stage, *[f"{sizes[unit]:,}" if unit in sizes else "" for unit in units])
    console = Console()
    console.print(table)
    kept = ", ".join(f"{value:,} {unit}" for unit, value in counts["kept"].items())
    rejected = ", ".join(f"{value:,} {unit}" for unit, value in counts["rejected"].items())
    # Plain lines: paths must stay whole for people and scripts to copy, whatever the width.
    typer.echo(f"wrote {result.dataset.directory}: {kept}")
    typer.echo(f"rejected {rejected}: see {result.rejected_path}")


def _run(call: Callable[[], IngestResult]) -> None:
    from segue.data.input_formats import InputError
    from segue.data.rejects import StrictModeError

    try:
        result = call()
    except StrictModeError as error:
        fail(f"{error} (--strict stops at the first bad record)", code=EXIT_BAD_INPUT)
    except (InputError, OSError) as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    _print_summary(result)
    if len(result.dataset.interactions) == 0:
        fail(f"nothing was kept; see why in {result.rejected_path}", code=EXIT_BAD_INPUT)


@ingest_app.command("playlists")
def playlists(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(help="Playlist files (.json, .jsonl, MPD slices) or directories of them."),
    ],
    out: OutOption = None,
    strict: StrictOption = False,
) -> None:
    """Ingest playlists: read, parse every song once, apply the data rules, write the dataset."""
    from segue.data.ingest import ingest_playlists

    settings = get_context(ctx).settings()
    target = out or settings.data.root / "playlists"
    _run(lambda: ingest_playlists(paths, target, settings.data, strict=strict))


@ingest_app.command("ratings")
def ratings(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="A MovieLens directory or ratings file (latest-small, ml-100k, ml-1m)."
        ),
    ],
    out: OutOption = None,
    strict: StrictOption = False,
) -> None:
    """Ingest MovieLens ratings: read, apply the data rules, write the dataset."""
    from segue.data.ingest import ingest_ratings

    settings = get_context(ctx).settings()
    target = out or settings.data.root / "ratings"
    _run(lambda: ingest_ratings(path, target, settings.data, strict=strict))


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")
