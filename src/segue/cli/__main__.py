"""`python -m segue.cli` runs the same command as the `segue` script."""

from segue.cli.main import app

app()
