"""`segue ingest playlists|ratings`: settings overrides, summaries and exit codes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from segue.cli.main import app
from segue.data.dataset import Dataset
from segue.data.rejects import read_rejections


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_cli_ingests_playlists_with_settings_overrides(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    out = tmp_path / "out"
    result = invoke(
        "--set", "data.min_sequence_length=3", "ingest", "playlists",
        str(ingest_fixtures / "playlists.json"), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "rejected.jsonl" in result.output
    manifest = Dataset.load(out).manifest
    assert manifest["settings"]["min_sequence_length"] == 3
    assert manifest["counts"]["kept"] == {"playlists": 2, "songs": 6, "items": 4}


def test_cli_ingests_ratings(tmp_path: Path, ingest_fixtures: Path) -> None:
    out = tmp_path / "out"
    result = invoke("ingest", "ratings", str(ingest_fixtures / "movielens-csv"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert Dataset.load(out).manifest["counts"]["kept"]["ratings"] == 4


def test_cli_strict_stops_with_exit_code_2_naming_file_and_line(
    tmp_path: Path, ingest_fixtures: Path
) -> None:
    result = invoke(
        "ingest",
        "ratings",
        str(ingest_fixtures / "movielens-csv"),
        "--out",
        str(tmp_path / "o"),
        "--strict",
    )
    assert result.exit_code == 2
    assert "ratings.csv, line 7: movieId 9 is not in movies.csv" in result.output


def test_cli_refuses_a_missing_path_with_exit_code_2(tmp_path: Path) -> None:
    result = invoke(
        "ingest", "playlists", str(tmp_path / "nope.json"), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 2
    assert "no such file or directory" in result.output


def test_cli_fails_when_nothing_survives(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jsonl"
    path.write_text("not json\n", encoding="utf-8")
    out = tmp_path / "out"
    result = invoke("ingest", "playlists", str(path), "--out", str(out))
    assert result.exit_code == 2
    assert "nothing was kept" in result.output
    assert len(read_rejections(out / "rejected.jsonl")) == 1
