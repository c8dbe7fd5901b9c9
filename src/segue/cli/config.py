"""`segue config show`: the effective configuration and where each value came from."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from segue.cli.context import EXIT_BAD_INPUT, fail, get_context
from segue.settings import SettingsError, flatten_keys, load_settings_with_sources

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@config_app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print every effective key, its value and the layer it came from."""
    cli = get_context(ctx)
    try:
        settings, sources = load_settings_with_sources(cli.env, cli.overrides)
    except SettingsError as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    values = flatten_keys(settings.model_dump(mode="json"))
    if as_json:
        rows = {
            key: {"value": value, "source": sources.get(key, "default")}
            for key, value in values.items()
        }
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"segue configuration (profile: {settings.env})")
    for column in ("key", "value", "source"):
        table.add_column(column)
    for key, value in values.items():
        shown = (
            "***" if key.endswith("api_key") and value else json.dumps(value, ensure_ascii=False)
        )
        table.add_row(key, shown, sources.get(key, "default"))
    Console(width=160).print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
