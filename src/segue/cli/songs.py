"""`segue songs parse`: the song-string parser on standard input, one JSON object per line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from segue.cli.context import EXIT_BAD_INPUT, fail

if TYPE_CHECKING:
    from segue.data.song_aliases import AliasTable

songs_app = typer.Typer(
    help="Parse free-text song strings the way ingestion does.", no_args_is_help=True
)


@songs_app.command("parse")
def parse(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Use this dataset's aliases.parquet as is, so keys match its items "
            "(default: learn aliases from the whole input).",
        ),
    ] = None,
) -> None:
    """Read one song string per line; write {"raw", "artist", "artist_aliases", "title",
    "title_translation", "featuring", "key"} per line.

    ``artist`` is written without its bracketed aliases (``artist_aliases``), ``title`` without a
    bracketed translation (``title_translation``, "" when none). A line that cannot be parsed
    gives {"raw", "error"} instead, so output lines match input lines.
    """
    from segue.data.song_parser import ParsedSong, parse_songs

    table = _load_aliases(data) if data is not None else None
    raws: list[str] = []
    undecodable: dict[int, str] = {}
    for number, line in enumerate(sys.stdin.buffer.read().split(b"\n")):
        line = line.removesuffix(b"\r")
        try:
            raws.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            raws.append(line.decode("utf-8", errors="replace"))
            undecodable[number] = "not UTF-8"
    if raws and raws[-1] == "" and len(raws) - 1 not in undecodable:
        raws.pop()  # the newline that ends the last line does not start another
    results, _ = parse_songs(raws, table, learn=table is None)
    out = sys.stdout.buffer
    for number, (raw, result) in enumerate(zip(raws, results, strict=True)):
        if number in undecodable:
            row: dict[str, object] = {"raw": raw, "error": undecodable[number]}
        elif isinstance(result, ParsedSong):
            row = {
                "raw": raw,
                "artist": result.artist,
                "artist_aliases": list(result.artist_aliases),
                "title": result.title,
                "title_translation": result.title_translation,
                "featuring": list(result.featuring),
                "key": result.key,
            }
        else:
            row = {"raw": raw, "error": result.reason}
        out.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    out.flush()


def _load_aliases(directory: Path) -> AliasTable:
    import pandas as pd

    from segue.data.song_aliases import AliasTable

    path = directory / "aliases.parquet"
    if not path.is_file():
        fail(
            f"{path}: no alias table; pass a playlist dataset directory made by `segue ingest`",
            code=EXIT_BAD_INPUT,
        )
    try:
        return AliasTable.from_frame(pd.read_parquet(path))
    except (ValueError, OSError) as error:
        fail(f"{path}: cannot read the alias table: {error}", code=EXIT_BAD_INPUT)


def register(app: typer.Typer) -> None:
    app.add_typer(songs_app, name="songs")
