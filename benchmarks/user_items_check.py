"""Fit time and quality of the user-item models on ml-latest-small, original random-10 split.

The original design's protocol: every rating is a positive, 10 random items per user are test
targets (seed 42), 10 more are validation targets (early stopping for the neural models). Models
train on the rest, without leakage. Tune on ``--on validation``; report ``--on test``. ``--fit-on-history`` also fits on the validation items (the
test histories), which closed-form models can use since they need no early stopping.
``--leaky`` reproduces the original leak (held-out targets in training) to show its effect.

    nice -n 10 .venv/bin/python benchmarks/user_items_check.py [--models ease,als] [--set ease.l2=300]
        [--saved-size]

``--saved-size`` also saves each fitted model (arrays + JSON, as packaged) and prints its size,
e.g. dense against sparse EASE: ``--models ease --set ease.dense_max_items=0``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from segue.data.interactions import Interactions
from segue.data.splits import leak_holdout_targets, split_random_holdout
from segue.evaluation.evaluator import full_ranking_metrics
from segue.models.base import create_model

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"
MODELS = ("most-popular", "item-knn", "als", "ease", "autoencoder", "mult-vae")


def read_ratings(directory: Path) -> Interactions:
    """Every rating as a positive, each user's items in time order, items indexed by movieId."""
    ratings = pd.read_csv(directory / "ratings.csv").sort_values(["userId", "timestamp", "movieId"])
    movies = np.sort(ratings["movieId"].unique())
    ratings["item"] = np.searchsorted(movies, ratings["movieId"].to_numpy())
    grouped = ratings.groupby("userId", sort=True)["item"]
    sequences = [group.to_numpy(dtype=np.int64) for _, group in grouped]
    ids = [str(user) for user in grouped.groups]
    return Interactions(sequences, len(movies), ids)


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, float | int]]:
    params: dict[str, dict[str, float | int]] = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        model, field = key.split(".", 1)
        number = float(value)
        params.setdefault(model, {})[field] = int(number) if number.is_integer() else number
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--set", action="append", default=[], help="model.key=value")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fit-on-history", action="store_true")
    parser.add_argument("--on", choices=("test", "validation"), default="test")
    parser.add_argument("--leaky", action="store_true", help="the original leak, for comparison")
    parser.add_argument("--saved-size", action="store_true", help="print each saved model's MB")
    args = parser.parse_args()

    split = split_random_holdout(read_ratings(args.data), n=10, seed=args.seed)
    if args.leaky:
        split = leak_holdout_targets(split)
    train = split.train
    if args.fit_on_history:
        train = Interactions(split.test.histories, train.n_items, split.test.sequence_ids)
    overrides = parse_overrides(args.set)
    size_header = f"{'saved MB':>10}" if args.saved_size else ""
    print(
        f"{'model':<14}{'fit s':>8}{'ndcg@10':>10}{'hit@10':>9}{'recall@10':>11}"
        f"{size_header}  params"
    )
    for name in args.models.split(","):
        model = create_model(name, overrides.get(name), seed=args.seed)
        started = time.perf_counter()
        model.fit(train, split.validation)
        fitted = time.perf_counter() - started
        metrics = full_ranking_metrics(model, getattr(split, args.on), (10,))
        size = f"{saved_megabytes(model):>10.1f}" if args.saved_size else ""
        print(
            f"{name:<14}{fitted:>8.1f}{metrics['ndcg_at_10']:>10.4f}"
            f"{metrics['hit_rate_at_10']:>9.4f}{metrics['recall_at_10']:>11.4f}{size}"
            f"  {overrides.get(name, {})} epochs={len(model.training_history)}"
        )


def saved_megabytes(model) -> float:
    """Size of the model saved the way a package holds it (arrays + JSON)."""
    with tempfile.TemporaryDirectory(prefix="segue-size-") as scratch:
        saved = model.save(Path(scratch) / "model")
        return sum(path.stat().st_size for path in saved.iterdir()) / 1e6


if __name__ == "__main__":
    main()
