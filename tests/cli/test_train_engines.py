"""`segue train --engine/--nproc/--workers`: combinations that cannot run are refused up front."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from segue.cli.main import app
from segue.cli.train import _without_option

BASE = ["train", "--task", "next-song", "--model", "sasrec", "--data", "nowhere"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--engine", "spark"], "--engine 'spark': expected one of local, ray"),
        (["--engine", "ray", "--nproc", "2"], "--nproc is for --engine local"),
        (["--workers", "2"], "--workers is for --engine ray"),
        (["--nproc", "2", "--register"], "--register refits on all of the dataset in one process"),
    ],
)
def test_impossible_engine_options_exit_2_with_the_reason(extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*BASE, *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_under_torchrun_the_launcher_sets_the_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    result = CliRunner().invoke(app, [*BASE, "--nproc", "2"])
    assert result.exit_code == 2
    assert "already started by torchrun" in result.output


def test_the_relaunched_command_drops_only_nproc() -> None:
    arguments = ["--set", "a.b=1", "train", "--nproc", "2", "--model", "lstm", "--nproc=3"]
    assert _without_option(arguments, "--nproc") == ["--set", "a.b=1", "train", "--model", "lstm"]
