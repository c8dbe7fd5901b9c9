"""What every command shares: the chosen profile, --set overrides, and error reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import typer

from segue.settings import Settings, SettingsError, load_settings

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


@dataclass
class CliContext:
    env: str | None = None
    overrides: list[str] = field(default_factory=list)
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.env, self.overrides)
            except SettingsError as error:
                fail(str(error), code=EXIT_BAD_INPUT)
        return self._settings


def get_context(ctx: typer.Context) -> CliContext:
    root = ctx.find_root()
    if not isinstance(root.obj, CliContext):
        root.obj = CliContext()
    return root.obj


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """Print an error to stderr and exit with ``code`` (2 = bad input, 1 = a step failed)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def print_wide(*renderables: Any) -> None:
    """Print rich tables at a fixed generous width so they read the same in a pipe or a log."""
    from rich.console import Console

    console = Console(width=200)
    for renderable in renderables:
        console.print(renderable)
