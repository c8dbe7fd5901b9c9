"""The `segue` command: one thin Typer sub-app per stage."""
