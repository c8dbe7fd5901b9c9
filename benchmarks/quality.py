"""Quality leaderboards: every model on the protocol its task is judged by, with fit time and memory.

Sections (each prints a Markdown table and writes leaderboard.md / .csv / .png under --out):

- user-items: ml-latest-small on the original design's split (every rating a positive, 10 random
  items per user held out, seed 42), without leakage. ``--leaky`` adds the autoencoder trained
  the original way (on the held-out items too), labelled ``(leaky)``.
- next-item: ml-latest-small timelines ordered by timestamp, leave-last-one-out.
- playlists: synthetic playlists from ``segue.sample.synth``, ingested like real ones,
  playlist-holdout (every position and last position).

Sections whose data or modules are missing are skipped with a message. Run from the repository:

    nice -n 10 .venv/bin/python benchmarks/quality.py [--only user-items,next-item,playlists] [--leaky]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from segue.evaluation.report import markdown_table
from segue.jobs.benchmark import BenchmarkResult, run_benchmark
from segue.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MOVIELENS = REPO.parent / "shared" / "data" / "ml-latest-small"
DEFAULT_OUT = REPO / "benchmarks" / "out"
SECTIONS = ("user-items", "next-item", "playlists")
USER_ITEM_MODELS = ["most-popular", "item-knn", "als", "ease", "autoencoder", "mult-vae"]
SEQUENCE_MODELS = ["most-popular", "markov", "session-knn", "gru4rec", "sasrec", "lstm"]


def ingest_movielens(source: Path, target: Path, settings: Settings) -> Path | None:
    """ml-latest-small with every rating kept as a positive (the original design's reading)."""
    if not (source / "ratings.csv").exists():
        print(f"skipped: ml-latest-small not found at {source}")
        return None
    if (target / "dataset.json").exists():
        return target
    if importlib.util.find_spec("segue.data.ingest") is None:
        print("skipped: segue.data.ingest is not available")
        return None
    from segue.data.ingest import ingest_ratings

    data = settings.data.model_copy(update={"implicit_threshold": 0.0})
    ingest_ratings(source, target, data, progress=True)
    return target


def synthetic_playlists(target: Path, settings: Settings, n_playlists: int) -> Path | None:
    if (target / "dataset.json").exists():
        return target
    if importlib.util.find_spec("segue.sample.synth") is None:
        print("skipped: segue.sample.synth is not available")
        return None
    if importlib.util.find_spec("segue.data.ingest") is None:
        print("skipped: segue.data.ingest is not available")
        return None
    from segue.data.ingest import ingest_playlists
    from segue.sample.synth import generate_playlists

    raw = target.parent / "synthetic-playlists.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    records = generate_playlists(n_playlists, max(n_playlists // 2, 50), seed=settings.data.seed)
    raw.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    ingest_playlists([raw], target, settings.data, progress=True)
    return target


def report(result: BenchmarkResult) -> None:
    print(f"\n## {result.leaderboard.title}\n")
    print(markdown_table(result.leaderboard.to_frame()))
    print()
    for note in result.leaderboard.notes:
        print(f"- {note}")
    for training in result.results:
        label = training.leaderboard_row().label
        config = {k: v for k, v in training.model.describe().items() if k not in {"model", "seed"}}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
        epochs = len(training.model.training_history)
        print(
            f"- {label}: {shown or 'no hyperparameters'}" + (f"; {epochs} epochs" if epochs else "")
        )
    if result.files is not None:
        print(f"- written to {result.files.markdown.parent}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_MOVIELENS, help="ml-latest-small")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--leaky", action="store_true", help="add the leaky autoencoder")
    parser.add_argument("--playlists", type=int, default=1000, help="synthetic playlists")
    parser.add_argument("--track", action="store_true", help="record MLflow runs")
    parser.add_argument("--set", action="append", default=[], help="section.key=value")
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; expected {', '.join(SECTIONS)}")

    settings = load_settings(overrides=args.set)
    datasets = args.out / "datasets"
    movielens = None
    if {"user-items", "next-item"} & set(sections):
        movielens = ingest_movielens(args.data, datasets / "ml-latest-small", settings)
    failed = False
    if "user-items" in sections and movielens is not None:
        result = run_benchmark(
            settings,
            "user-items",
            movielens,
            USER_ITEM_MODELS,
            protocol="random-holdout",
            leaky_algorithms=["autoencoder"] if args.leaky else [],
            out_dir=args.out / "user-items",
            track=args.track,
            title="user-items on ml-latest-small, the original split (10 random items per user)",
        )
        report(result)
        failed |= bool(result.failures)
    if "next-item" in sections and movielens is not None:
        result = run_benchmark(
            settings,
            "next-song",
            movielens,
            SEQUENCE_MODELS,
            protocol="leave-last-one-out",
            out_dir=args.out / "next-item",
            track=args.track,
            title="next item on ml-latest-small timelines (leave-last-one-out)",
        )
        report(result)
        failed |= bool(result.failures)
    if "playlists" in sections:
        playlists = synthetic_playlists(datasets / "synthetic-playlists", settings, args.playlists)
        if playlists is not None:
            result = run_benchmark(
                settings,
                "next-song",
                playlists,
                SEQUENCE_MODELS,
                protocol="playlist-holdout",
                out_dir=args.out / "playlists",
                track=args.track,
                title=f"next song on {args.playlists} synthetic playlists (playlist-holdout)",
            )
            report(result)
            failed |= bool(result.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
