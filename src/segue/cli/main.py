"""Entry point of the `segue` command. Sub-commands live one module per stage and import lazily."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from segue import __version__
from segue.cli import batch, config, data, demo, ingest, lifecycle, monitor, serve, songs, train
from segue.cli.context import CliContext

app = typer.Typer(
    name="segue",
    help="Segue: from raw playlists and ratings to a monitored recommendation API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module exposes register(app) and imports its heavy work inside its commands; the order
# here is the order of `segue --help`.
_COMMAND_MODULES = (config, songs, data, ingest, train, lifecycle, batch, serve, monitor, demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segue {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    env: Annotated[
        str | None,
        typer.Option("--env", help="Profile: dev, stage or live (default: $SEGUE_ENV or dev)."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any key: section.key=value (repeatable)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = CliContext(env=env, overrides=list(overrides or []))


for _module in _COMMAND_MODULES:
    _module.register(app)
