"""`segue data synth playlists|ratings` and `segue data download`: exit codes and output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fixtures.archive_server import publish_small_archive, serve_directory
from segue.cli.data import MovieLensName
from segue.cli.main import app
from segue.data.download import ARCHIVES
from segue.sample.synth import generate_playlists, generate_ratings


@pytest.fixture
def small_archive(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """ml-latest-small.zip and its .md5 sidecar on a local server; yields (url, md5)."""
    with serve_directory(tmp_path) as (base, served):
        yield publish_small_archive(base, served)


def test_cli_writes_playlists_and_ratings(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["data", "synth", "playlists", "--out", str(tmp_path / "p.jsonl"), "--playlists", "25",
         "--songs", "40", "--seed", "9"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == generate_playlists(25, 40, seed=9)
    result = runner.invoke(
        app, ["data", "synth", "ratings", "--out", str(tmp_path / "ml"), "--users", "30",
              "--items", "60", "--bots", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected, _ = generate_ratings(30, 60, seed=42, n_bots=1)  # data.seed from configs/base.toml
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ml" / "ratings.csv"), expected)
    result = runner.invoke(
        app,
        ["data", "synth", "ratings", "--out", str(tmp_path / "x"), "--users", "2", "--bots", "5"],
    )
    assert result.exit_code == 2
    assert "--bots 5 is more than --users 2" in result.output


def test_cli_download_prints_where_and_the_license(
    small_archive: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = small_archive
    runner = CliRunner()
    args = ["data", "download", "movielens-small", "--out", str(tmp_path / "d"), "--url", url]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "unpacked 2 files into" in result.output
    assert "non-commercial" in result.output and "cite" in result.output
    failed = runner.invoke(app, [*args[:5], "--url", url.replace(".zip", "-gone.zip"), "--force"])
    assert failed.exit_code == 1
    assert "HTTP 404" in failed.output
    assert (
        tmp_path / "d" / "ml-latest-small" / "ratings.csv"
    ).exists()  # a failed --force keeps it


def test_cli_choices_match_the_archive_table() -> None:
    assert {name.value for name in MovieLensName} == set(ARCHIVES)
