"""`segue songs parse`, run as the real console script: one JSON object per input line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

SEGUE = str(Path(sys.executable).with_name("segue"))


def run_parse(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SEGUE, "songs", "parse", *args], input=stdin, capture_output=True, timeout=120
    )


def json_lines(output: bytes) -> list[dict]:
    return [json.loads(line) for line in output.decode("utf-8").splitlines()]


def test_every_line_gets_one_json_object_and_aliases_are_learned_across_lines() -> None:
    lines = [
        "IU - 밤편지",
        "00:00 아이유 (IU) - 좋은 날 [Official MV]",
        "",
        "[MV] (Official Video)",
        "Simon & Garfunkel - The Boxer (feat. Nobody, Somebody)",
    ]
    done = run_parse(("\n".join(lines) + "\n").encode("utf-8"))
    assert done.returncode == 0, done.stderr.decode()
    assert json_lines(done.stdout) == [
        {
            "raw": "IU - 밤편지",
            "artist": "IU",
            "artist_aliases": [],
            "title": "밤편지",
            "title_translation": "",
            "featuring": [],
            "key": "iu|밤편지",
        },
        {
            "raw": "00:00 아이유 (IU) - 좋은 날 [Official MV]",
            "artist": "아이유",
            "artist_aliases": ["IU"],
            "title": "좋은 날",
            "title_translation": "",
            "featuring": [],
            "key": "iu|좋은날",
        },
        {"raw": "", "error": "empty"},
        {"raw": "[MV] (Official Video)", "error": "no title"},
        {
            "raw": "Simon & Garfunkel - The Boxer (feat. Nobody, Somebody)",
            "artist": "Simon & Garfunkel",
            "artist_aliases": [],
            "title": "The Boxer",
            "title_translation": "",
            "featuring": ["Nobody", "Somebody"],
            "key": "garfunkelandsimon|theboxer",
        },
    ]


def test_unreadable_lines_are_reported_in_place() -> None:
    done = run_parse(b"IU - Palette\r\n\xff\xfe - broken\nColdplay - Yellow")
    rows = json_lines(done.stdout)
    assert done.returncode == 0
    assert [row.get("key") for row in rows] == ["iu|palette", None, "coldplay|yellow"]
    assert rows[0]["raw"] == "IU - Palette"
    assert rows[1]["error"] == "not UTF-8"


def test_data_option_uses_the_datasets_alias_table_as_is(tmp_path: Path) -> None:
    pd.DataFrame({"alias": ["아이유"], "artist": ["iu"]}).to_parquet(tmp_path / "aliases.parquet")
    stdin = "아이유 - 밤편지\n잔나비 (JANNABI) - 외딴섬\n잔나비 - 뜨거운 여름밤\n".encode()
    done = run_parse(stdin, "--data", str(tmp_path))
    assert done.returncode == 0, done.stderr.decode()
    # the table's alias applies; aliases in the input are not learned, so keys match the dataset
    assert [row["key"] for row in json_lines(done.stdout)] == [
        "iu|밤편지",
        "잔나비|외딴섬",
        "잔나비|뜨거운여름밤",
    ]


def test_data_option_without_an_alias_table_is_a_clear_bad_input_error(tmp_path: Path) -> None:
    done = run_parse(b"IU - Palette\n", "--data", str(tmp_path))
    assert done.returncode == 2
    assert "aliases.parquet" in done.stderr.decode()
    assert done.stdout == b""


def test_the_command_loads_neither_torch_nor_mlflow() -> None:
    probe = (
        "import sys, typer\n"
        "from typer.testing import CliRunner\n"
        "from segue.cli.songs import register\n"
        "app = typer.Typer()\n"
        "register(app)\n"
        "app.command('noop')(lambda: None)\n"
        "result = CliRunner().invoke(app, ['songs', 'parse'], input='IU - Palette\\n')\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'mlflow', 'pandas') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "[]"


def test_translations_and_aliases_come_in_their_own_fields() -> None:
    done = run_parse("IU(아이유) - 밤편지 (Through the Night) [Official MV]\n".encode())
    assert done.returncode == 0, done.stderr.decode()
    (row,) = json_lines(done.stdout)
    assert (row["artist"], row["artist_aliases"]) == ("IU", ["아이유"])
    assert (row["title"], row["title_translation"]) == ("밤편지", "Through the Night")
    assert row["key"] == "iu|밤편지"
