"""Speed of the compiled loops of ranking and scoring (``segue._kernels``).

- ``top_k`` (a heap over each row) at serving shapes (one to a few rows of 9,724 movies or
  200,000 songs) and the evaluation's (512 rows);
- the sum of a history's weight rows (``sum_dense_rows``) against the NumPy it replaced, one
  ``np.add`` per row, for histories of 25 items of a 9,724 x 9,724 float32 matrix (EASE's size
  on ml-latest-small).

    .venv/bin/python benchmarks/ranking.py [--seconds 1]

Scores are seeded random normals plus a popularity slope, so rows are ranked as real scores are.
Times are microseconds of one thread per row (or per history).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable

import numpy as np

from segue.models.weight_rows import sum_dense_rows
from segue.ranking.topk import top_k

SHAPES = [(1, 9_724, 10), (4, 9_724, 10), (64, 9_724, 10), (1, 200_000, 10), (512, 200_000, 10)]
SHAPES += [(512, 200_000, 100)]
HISTORY = 25


def per_call(function: Callable[[], object], seconds: float) -> float:
    """Seconds per call, from as many calls as fit in ``seconds`` (at least 3)."""
    calls, started = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - started < seconds:
        function()
        calls += 1
    return (time.perf_counter() - started) / calls


def numpy_sum_rows(items: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = np.zeros(weights.shape[1], dtype=np.float32)
    for item in items.tolist():
        np.add(total, weights[item], out=total)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per cell")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| rows | items | k | top_k µs/row |")
    print("| ---: | ---: | ---: | ---: |")
    for rows, n_items, k in SHAPES:
        slope = np.log1p(np.arange(n_items)[::-1] / n_items * 50).astype(np.float32)
        scores = rng.standard_normal((rows, n_items)).astype(np.float32) + slope
        seconds = per_call(functools.partial(top_k, scores, k), args.seconds)
        print(f"| {rows} | {n_items:,} | {k} | {seconds / rows * 1e6:.1f} |")
    weights = rng.standard_normal((9_724, 9_724)).astype(np.float32)
    histories = [rng.choice(9_724, HISTORY, replace=False) for _ in range(200)]
    for history in histories[:5]:
        if not np.array_equal(
            sum_dense_rows([history], weights)[0], numpy_sum_rows(np.sort(history), weights)
        ):
            raise SystemExit("sum_dense_rows and NumPy disagree")
    ours = per_call(lambda: [sum_dense_rows([h], weights) for h in histories], args.seconds)
    theirs = per_call(
        lambda: [numpy_sum_rows(np.sort(h), weights) for h in histories], args.seconds
    )
    print(
        f"\nsum of {HISTORY} weight rows of 9,724 items: {ours / len(histories) * 1e6:.1f} µs, "
        f"one np.add a row {theirs / len(histories) * 1e6:.1f} µs ({theirs / ours:.1f}x)"
    )


if __name__ == "__main__":
    main()
