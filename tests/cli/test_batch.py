"""`segue batch recommend`: exit codes, what it prints, the table it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifecycle_support import make_package, registry, settings  # noqa: F401
from segue.cli.main import app
from segue.serving.precomputed import read_lists, read_manifest
from segue.tracking.registry import CHAMPION, Registry


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["batch", "recommend", *args])
    return result.exit_code, result.output


def test_every_known_user_of_the_champion_gets_a_list(
    registry: Registry,  # noqa: F811
    make_package,  # noqa: F811
) -> None:
    package = make_package(task="user-items", protocol="random-holdout")
    version = registry.publish(package)
    registry.set_alias(version.name, CHAMPION, version.version)

    code, output = _run("--task", "user-items", "--out", "lists", "--k", "3")

    assert code == 0, output
    users = len(package.user_histories)
    assert f"{users} user-items lists of up to 3 items" in output
    assert f"from {version.name} version {version.version} (most-popular), local engine" in output
    assert "written to lists" in output
    frame = read_lists("lists")
    assert frame["user"].nunique() == users
    assert read_manifest("lists").rows == len(frame)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--task", "next-song"], "--playlists"),
        (["--task", "user-items", "--engine", "spark"], "--engine"),
        (["--task", "user-items", "--k", "0"], "--k"),
        (["--task", "user-items", "--set", "batch.batch_size=0"], "batch.batch_size"),
    ],
)
def test_bad_input_exits_2_naming_the_option(
    settings,  # noqa: F811
    args: list[str],
    named: str,
) -> None:
    code, output = _run(*args, "--out", "lists")
    assert code == 2
    assert named in output


def test_a_used_output_directory_exits_2_and_no_champion_exits_1(settings) -> None:  # noqa: F811
    Path("used").mkdir()
    Path("used/old.txt").write_text("keep me", encoding="utf-8")
    code, output = _run("--task", "user-items", "--out", "used")
    assert (code, "--out" in output) == (2, True)
    assert Path("used/old.txt").read_text(encoding="utf-8") == "keep me"

    code, output = _run("--task", "user-items", "--out", "lists")
    assert code == 1
    assert "has no champion yet" in output
