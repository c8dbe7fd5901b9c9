"""`segue data synth playlists|ratings` and `segue data download`: raw data to start from."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from segue.cli.context import EXIT_BAD_INPUT, fail, get_context

data_app = typer.Typer(help="Make synthetic raw data or fetch MovieLens.", no_args_is_help=True)
synth_app = typer.Typer(help="Seeded, realistic synthetic data.", no_args_is_help=True)
data_app.add_typer(synth_app, name="synth")


class PlaylistFileFormat(StrEnum):
    json = "json"
    jsonl = "jsonl"


class MovieLensName(StrEnum):
    """The keys of ``segue.data.download.ARCHIVES``, listed here so --help stays fast."""

    small = "movielens-small"
    ml_100k = "movielens-100k"
    ml_1m = "movielens-1m"


SeedOption = Annotated[
    int | None, typer.Option("--seed", help="Random seed (default: data.seed from the settings).")
]


@synth_app.command("playlists")
def synth_playlists(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="File to write (.json or .jsonl).")],
    seed: SeedOption = None,
    playlists: Annotated[int, typer.Option("--playlists", min=0, help="Playlists.")] = 1000,
    songs: Annotated[int, typer.Option("--songs", min=1, help="Distinct songs.")] = 2000,
    file_format: Annotated[
        PlaylistFileFormat | None,
        typer.Option("--format", help="json (one array) or jsonl (default: from the file suffix)."),
    ] = None,
    malformed_rate: Annotated[
        float,
        typer.Option("--malformed-rate", min=0.0, max=1.0, help="Share of malformed records."),
    ] = 0.01,
) -> None:
    """YouTube-style playlist tracklists: messy Korean and English song strings, ordered."""
    from segue.sample.synth import generate_playlists, write_playlists

    chosen_seed = seed if seed is not None else get_context(ctx).settings().data.seed
    records = generate_playlists(playlists, songs, chosen_seed, malformed_rate)
    path = write_playlists(records, out, file_format.value if file_format else None)
    entries = sum(len(r["songs"]) for r in records if isinstance(r.get("songs"), list))
    typer.echo(f"wrote {path}: {len(records):,} playlists, {entries:,} entries, seed {chosen_seed}")


@synth_app.command("ratings")
def synth_ratings(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Directory for ratings.csv and movies.csv.")],
    seed: SeedOption = None,
    users: Annotated[int, typer.Option("--users", min=1, help="Users, bots included.")] = 600,
    items: Annotated[int, typer.Option("--items", min=1, help="Movies.")] = 2000,
    bots: Annotated[
        int, typer.Option("--bots", min=0, help="Bot-like users rating seconds apart.")
    ] = 3,
) -> None:
    """MovieLens latest-small files with latent tastes, a long tail and a few bots."""
    from segue.sample.synth import generate_ratings, write_ratings

    if bots > users:
        fail(f"--bots {bots} is more than --users {users}", code=EXIT_BAD_INPUT)
    chosen_seed = seed if seed is not None else get_context(ctx).settings().data.seed
    ratings, movies = generate_ratings(users, items, chosen_seed, n_bots=bots)
    ratings_path, movies_path = write_ratings(ratings, movies, out)
    typer.echo(
        f"wrote {ratings_path} ({len(ratings):,} ratings) and {movies_path} "
        f"({len(movies):,} movies), seed {chosen_seed}"
    )


@data_app.command("download")
def download(
    ctx: typer.Context,
    name: Annotated[MovieLensName, typer.Argument(help="Which MovieLens archive.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory to unpack into (default: <data.root>/../raw)."),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="A mirror of the archive.")] = None,
    checksum: Annotated[
        str | None,
        typer.Option("--checksum", help="Expected digest: md5:<hex> or sha256:<hex>."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing copy.")] = False,
) -> None:
    """Fetch an official MovieLens archive, verify its checksum and unpack it safely."""
    from segue.data.download import LICENSE_REMINDER, DownloadError, download_dataset

    target = out if out is not None else get_context(ctx).settings().data.root.parent / "raw"
    try:
        path = download_dataset(name.value, target, url=url, checksum=checksum, force=force)
    except DownloadError as error:
        fail(str(error))
    files = sum(1 for p in path.rglob("*") if p.is_file())
    typer.echo(f"unpacked {files} files into {path}")
    typer.echo(LICENSE_REMINDER)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
