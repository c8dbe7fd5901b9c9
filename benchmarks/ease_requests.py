"""In-process EASE requests per second on ml-latest-small: one thread, no HTTP, no registry.

The same path a served new-user request takes after parsing (key lookup, then the history's
weight rows added up, ranked and counted in one compiled call), called in a loop with histories
of 1 to --longest (25) movies drawn from real users.
What it isolates is scoring and ranking, the cost issue 11 item 5 is about. Requests per CPU
second (the loop's process time) stay comparable on a busy machine, where wall time does not:

    nice -n 10 .venv/bin/python benchmarks/ease_requests.py [--seconds 10] [--set ease.l2=200]

It also prints the size of the model package (scorer, catalogue, every user's history) as
saved; ``--set ease.dense_max_items=0`` measures the sparse EASE.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from segue.models.base import create_model
from segue.ranking.postprocess import PostProcessConfig
from segue.serving.recommender import ListRules, ModelVersion, ServingModel
from segue.tracking.package import ModelPackage, histories_by_id
from user_items_check import DEFAULT_DATA, parse_overrides, read_ratings


def catalogue_frame(n_items: int):
    import pandas as pd

    return pd.DataFrame(
        {
            "item": np.arange(n_items),
            "key": [f"movie:{item}" for item in range(n_items)],
            "artist": [""] * n_items,
            "title": [f"movie {item}" for item in range(n_items)],
            "count": np.ones(n_items, dtype=np.int64),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--longest", type=int, default=25)
    parser.add_argument("--set", action="append", default=[], help="ease.key=value")
    args = parser.parse_args()

    interactions = read_ratings(args.data)
    scorer = create_model("ease", parse_overrides(args.set).get("ease")).fit(interactions)
    frame = catalogue_frame(interactions.n_items)
    package = ModelPackage("user-items", scorer, frame, histories_by_id(interactions))
    model = ServingModel("user-items", ModelVersion("bench", "1"), package, 85.0)
    rules = ListRules(PostProcessConfig())
    rng = np.random.default_rng(0)
    keys = frame["key"].to_numpy()
    bodies = []
    for _ in range(1000):
        history = interactions.sequences[rng.integers(len(interactions))]
        size = int(rng.integers(1, min(args.longest, len(history)) + 1))
        bodies.append(keys[rng.choice(history, size=size, replace=False)].tolist())
    latencies = []
    cpu_started = time.process_time()
    deadline = time.perf_counter() + args.seconds
    index = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        model.recommend(model.history_request(bodies[index % len(bodies)], 10, rules))
        latencies.append(time.perf_counter() - started)
        index += 1
    cpu = time.process_time() - cpu_started
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    with tempfile.TemporaryDirectory(prefix="segue-package-") as scratch:
        saved = package.save(Path(scratch) / "package")
        megabytes = sum(f.stat().st_size for f in saved.rglob("*") if f.is_file()) / 1e6
    print(
        f"EASE {scorer.describe()} on {interactions.n_items} items, package {megabytes:.1f} MB: "
        f"{len(latencies) / sum(latencies):,.0f} requests/s ({len(latencies) / cpu:,.0f} per CPU "
        f"second), p50 {p50:.3f} ms, p99 {p99:.3f} ms"
    )


if __name__ == "__main__":
    main()
