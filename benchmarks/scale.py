"""How fit cost grows: every model fitted on synthetic interactions of growing size.

Run from the repository (the full grid takes about 20 minutes on 2 shared cores):

    nice -n 10 .venv/bin/python benchmarks/scale.py [--quick] [--max-gb 8] [--max-seconds 120]
        [--models ease,als] [--interactions 10000,100000] [--items 1000,10000] [--out FILE]

For each model of ``segue.models.base.MODEL_NAMES`` and each task it serves (next-song models on
playlists, user-item models on user histories; most-popular on both) it fits one cell of the
grid interactions x items (10k, 100k, 1M x 1k, 10k, 50k, 200k; ``--quick``: the two smallest of
each, about 5 minutes) and prints fit time (CPU and wall), peak memory above the starting point
(the project's ``segue.jobs.memory.PeakMemory`` meter) and the saved package's size. At the end it prints, per model, the growth
exponents b and c of ``cost = a * interactions^b * items^c``, fitted by least squares on
log-log over the measured cells (an exponent only where its axis has at least two usable
points).

Data, built here with a seeded NumPy generator: item popularity is Zipf (weight 1/rank over a
random permutation of the catalogue), so in the large catalogues most items sit in one or two
sequences and many in none; playlists hold ~100 songs (Poisson), user histories follow a
long-tailed log-normal length (median 50, mean ~80, 5 to 5,000, at most a fifth of the
catalogue). Items are drawn by popularity without repeats inside a sequence and in random
order, with no taste structure, which makes co-occurrence denser than in real data: a
pessimistic case for the neighbourhood models.

Choices that shape the figures:

- Time is the fitting process's CPU time (``time.process_time``), with wall time beside it: the
  2 cores are shared and this script runs niced, so wall time measures the neighbours as much
  as the fit. Every fit is single-threaded (BLAS, OpenMP and ``torch.set_num_threads(1)``; ALS
  already uses one thread), so CPU time is the work, figures are stable from run to run, and
  the exponents reflect growth rather than contention. Multi-threaded BLAS would shorten EASE's
  wall time by up to the core count; the exponents would not change.
- Each cell runs in a fresh child process, so one fit's freed memory cannot hide the next one's
  peak. The child fixes glibc's mmap threshold so that large arrays freed while building the
  data go back to the system instead of being reused unseen by the fit, and a warm-up fit on a
  tiny catalogue first pays the one-off costs (lazy imports, first kernel calls).
- Neural models run 1 epoch with their default hyperparameters and no validation holdout (no
  early stopping); multiply by the epochs they really run for a full fit.
- Before a fit, the model's own memory guard (``estimate_fit_bytes``, the estimate that makes
  ``fit`` refuse with ``FitTooLargeError``) is asked with ``--max-gb`` as the cap (or the memory
  available, if less); its estimate is printed beside the measured peak, and a cell above the
  cap is skipped with the model's advice. The time of a cell is extrapolated from the nearest
  smaller measured cells with the exponents seen so far (at least linear) and a cell over
  ``--max-seconds`` is skipped. A fit that still uses more than 2 x ``--max-seconds`` of CPU
  time is stopped, and the bigger cells of that model are skipped. Cells under 0.05 s or 1 MB
  measure fixed overhead and are left out of the exponent fits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

INTERACTIONS = (10_000, 100_000, 1_000_000)
ITEMS = (1_000, 10_000, 50_000, 200_000)
NEURAL_MODELS = frozenset({"lstm", "gru4rec", "sasrec", "autoencoder", "mult-vae"})
DATA_SEED = 42
MODEL_SEED = 0
PLAYLIST_LENGTH = 100
USER_MEDIAN_LENGTH = 50
USER_LENGTH_SIGMA = 1.0
USER_LENGTH_RANGE = (5, 5_000)
# Below these a measurement is fixed overhead, not growth: left out of the exponent fits.
MIN_FIT_SECONDS = 0.05
MIN_PEAK_MB = 1.0
# A child using more CPU time than this multiple of --max-seconds is stopped.
HARD_STOP_FACTOR = 2
TOP_UP_ROUNDS = 30
WARM_UP_SIZE = (2_000, 500)  # interactions, items
SINGLE_THREAD_ENV = {
    name: "1"
    for name in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    )
}
# A fixed mmap threshold stops glibc from raising it after the data is built: large arrays then
# come from (and go back to) the system, so memory freed before the fit cannot hide its peak.
CHILD_ENV = {**SINGLE_THREAD_ENV, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


@dataclass(frozen=True)
class Cell:
    model: str
    task: str
    interactions: int
    items: int


@dataclass
class Outcome:
    cell: Cell
    fit_seconds: float | None = None  # CPU seconds of the fitting process
    wall_seconds: float | None = None
    peak_mb: float | None = None
    estimate_mb: float | None = None  # the model's own estimate of its fit's peak
    package_mb: float | None = None
    sequences: int | None = None
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.fit_seconds is not None


# -- synthetic data ------------------------------------------------------------------------------


def zipf_popularity(n_items: int, rng: np.random.Generator) -> np.ndarray:
    """Probabilities 1/rank, normalised, with ranks dealt to items at random."""
    weights = 1.0 / np.arange(1, n_items + 1, dtype=np.float64)
    return rng.permutation(weights / weights.sum())


def lengths_summing_to(lengths: np.ndarray, total: int) -> np.ndarray:
    """The first lengths whose sum reaches ``total``, the last one cut so the sum is exact."""
    ends = np.cumsum(lengths)
    count = int(np.searchsorted(ends, total)) + 1
    kept = lengths[:count].copy()
    kept[-1] -= int(ends[count - 1]) - total
    return kept[kept > 0]


def distinct_histories(
    lengths: np.ndarray, probabilities: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """One history per length: items drawn by popularity, no repeats, in random order.

    Draws with replacement, drops repeats and tops up the short histories; a history still short
    after ``rounds`` top-ups stays short (lengths are capped well below the catalogue's size, so
    this is rare).
    """
    n_items = len(probabilities)
    owners = np.arange(len(lengths), dtype=np.int64)
    keys = np.empty(0, dtype=np.int64)
    held = np.zeros(len(lengths), dtype=np.int64)
    for _ in range(TOP_UP_ROUNDS):
        deficit = lengths - held
        short = deficit > 0
        if not short.any():
            break
        # Twice the deficit: repeats of popular items are common; the surplus is dropped below.
        wanted = np.repeat(owners[short], 2 * deficit[short])
        drawn = np.unique(wanted * n_items + rng.choice(n_items, len(wanted), p=probabilities))
        drawn = drawn[~np.isin(drawn, keys, assume_unique=True)]
        # A random subset of each owner's new items, no more than its deficit.
        drawn = drawn[rng.permutation(len(drawn))]
        drawn = drawn[np.argsort(drawn // n_items, kind="stable")]
        owner = drawn // n_items
        rank = np.arange(len(drawn)) - np.searchsorted(owner, owner)
        drawn = drawn[rank < deficit[owner]]
        keys = np.concatenate([keys, drawn])
        held += np.bincount(drawn // n_items, minlength=len(lengths))
    order = np.lexsort((rng.random(len(keys)), keys // n_items))
    keys = keys[order]
    bounds = np.cumsum(np.bincount(keys // n_items, minlength=len(lengths)))[:-1]
    return [part for part in np.split(keys % n_items, bounds) if len(part)]


def synthetic_interactions(task: str, n_interactions: int, n_items: int):
    """Playlists (next-song) or user histories (user-items) with about ``n_interactions`` items."""
    from segue.data.interactions import Interactions

    rng = np.random.default_rng([DATA_SEED, n_interactions, n_items, int(task == "user-items")])
    probabilities = zipf_popularity(n_items, rng)
    draws = n_interactions // 2 + 2
    if task == "next-song":
        lengths = np.maximum(rng.poisson(PLAYLIST_LENGTH, draws), 2)
    else:
        raw = rng.lognormal(math.log(USER_MEDIAN_LENGTH), USER_LENGTH_SIGMA, draws)
        lengths = np.clip(np.rint(raw), *USER_LENGTH_RANGE).astype(np.int64)
    # A fifth of the catalogue at most: collecting more distinct items from a Zipf tail is slow.
    lengths = np.minimum(lengths, max(n_items // 5, 1))
    sequences = distinct_histories(lengths_summing_to(lengths, n_interactions), probabilities, rng)
    return Interactions(sequences, n_items)


# -- time budget ---------------------------------------------------------------------------------


def smaller_measured(cell: Cell, done: list[Outcome]) -> list[Outcome]:
    """Measured cells of the same model and task that are no bigger on either axis."""
    return [
        outcome
        for outcome in done
        if outcome.fit_seconds is not None
        and outcome.cell.interactions <= cell.interactions
        and outcome.cell.items <= cell.items
    ]


def predicted_seconds(cell: Cell, done: list[Outcome]) -> float | None:
    """Time extrapolated from the nearest smaller measured cell on each axis, the smaller guess.

    Growth is taken at least linear on each axis. Two neighbours rather than one because a
    model may change method along an axis (GRU4Rec and SASRec switch to a sampled softmax above
    20k items), and then the neighbour on the other axis is the better guide.
    """
    exponents = growth_exponents(done, "fit_seconds")
    along_interactions = max(exponents.get("interactions") or 1.0, 1.0)
    along_items = max(exponents.get("items") or 1.0, 1.0)
    below = smaller_measured(cell, done)
    same_items = [o for o in below if o.cell.items == cell.items]
    same_interactions = [o for o in below if o.cell.interactions == cell.interactions]
    neighbours = [
        max(same_items, key=lambda o: o.cell.interactions, default=None),
        max(same_interactions, key=lambda o: o.cell.items, default=None),
    ]
    if not any(neighbours):  # no cell in line: the nearest one below on both axes
        neighbours = [max(below, key=lambda o: o.cell.interactions * o.cell.items, default=None)]
    guesses = [
        outcome.fit_seconds
        * (cell.interactions / outcome.cell.interactions) ** along_interactions
        * (cell.items / outcome.cell.items) ** along_items
        for outcome in neighbours
        if outcome is not None and outcome.fit_seconds is not None
    ]
    return min(guesses, default=None)


def stopped_below(cell: Cell, done: list[Outcome]) -> Outcome | None:
    """A smaller cell of the same model that was stopped for time: a bigger one would be too."""
    for outcome in done:
        smaller = (
            outcome.cell.interactions <= cell.interactions and outcome.cell.items <= cell.items
        )
        if smaller and outcome.note.startswith("stopped"):
            return outcome
    return None


# -- growth exponents ----------------------------------------------------------------------------


def growth_exponents(outcomes: list[Outcome], metric: str) -> dict[str, float | None]:
    """Least squares of log(metric) on log(interactions) and log(items) over usable cells.

    An axis takes part only with at least two distinct values among the points; the exponent
    of an axis that does not is None.
    """
    floor = MIN_FIT_SECONDS if metric == "fit_seconds" else MIN_PEAK_MB
    points = [
        (o.cell.interactions, o.cell.items, getattr(o, metric))
        for o in outcomes
        if o.measured and getattr(o, metric) is not None and getattr(o, metric) >= floor
    ]
    result: dict[str, float | None] = {"interactions": None, "items": None, "points": len(points)}
    if len(points) < 2:
        return result
    values = np.log(np.array(points, dtype=np.float64))
    axes = [
        (name, column)
        for column, name in enumerate(("interactions", "items"))
        if len(np.unique(values[:, column])) >= 2
    ]
    while axes and len(points) < len(axes) + 1:
        axes.pop()  # too few points for both axes: keep the interactions one
    if not axes:
        return result
    design = np.column_stack([np.ones(len(points))] + [values[:, column] for _, column in axes])
    coefficients, *_ = np.linalg.lstsq(design, values[:, 2], rcond=None)
    for (name, _), coefficient in zip(axes, coefficients[1:]):
        result[name] = float(coefficient)
    return result


# -- one fit, in a child process -----------------------------------------------------------------


def _return_freed_memory() -> None:
    """Hand the heap's freed memory back to the system (glibc's ``malloc_trim``): memory freed
    while the data was generated would otherwise be reused by the fit without the
    resident-memory meter seeing it (10M interactions: a few hundred MB read too low)."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: peaks may read low, as before
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def fit_one(cell: Cell, max_gb: float) -> dict[str, object]:
    """Generate the cell's data, fit the model under the memory meter, save it, measure.

    The model's own memory guard decides first: a fit it estimates above ``max_gb`` (or the
    memory available) is not run, and the answer carries the estimate and its advice.
    """
    import gc

    from segue.jobs.memory import PeakMemory
    from segue.models.base import FitTooLargeError, create_model

    if cell.model in NEURAL_MODELS:
        import torch

        torch.set_num_threads(1)
    train = synthetic_interactions(cell.task, cell.interactions, cell.items)
    params = {"epochs": 1} if cell.model in NEURAL_MODELS else {}
    model = create_model(cell.model, params, seed=MODEL_SEED, memory_limit_gb=max_gb)
    estimate_mb = model.estimate_fit_bytes(train) / 2**20
    try:
        model.check_fit_memory(train)
    except FitTooLargeError as error:
        return {
            "estimate_mb": estimate_mb,
            "limit_mb": error.limit_bytes / 2**20,
            "alternative": model.fit_alternative(train),
        }
    # A warm-up fit on a tiny catalogue pays the first-call costs (lazy imports, kernel set-up)
    # that would otherwise pass for growth.
    warm_up = synthetic_interactions(cell.task, *WARM_UP_SIZE)
    create_model(cell.model, params, seed=MODEL_SEED).fit(warm_up)
    gc.collect()
    _return_freed_memory()
    with PeakMemory() as meter:
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        model.fit(train)
        cpu_seconds = time.process_time() - start_cpu
        wall_seconds = time.perf_counter() - start_wall
    with tempfile.TemporaryDirectory(prefix="segue-scale-") as scratch:
        saved = model.save(scratch)
        package = sum(path.stat().st_size for path in saved.rglob("*") if path.is_file())
    return {
        "fit_seconds": cpu_seconds,
        "wall_seconds": wall_seconds,
        "peak_mb": meter.peak_mb,
        "estimate_mb": estimate_mb,
        "package_mb": package / 2**20,
        "sequences": len(train),
        "meter": "segue.jobs.memory",
    }


def run_in_child(cell: Cell, max_gb: float, max_seconds: float) -> Outcome:
    """Fit ``cell`` in a fresh single-threaded interpreter; a failure or a stop becomes a note.

    The child is stopped once it has used ``HARD_STOP_FACTOR * max_seconds`` of CPU time (data
    and warm-up included): CPU time, unlike wall time, does not grow with the neighbours' load.
    """
    import psutil

    limit = HARD_STOP_FACTOR * max_seconds
    request = json.dumps({"cell": cell.__dict__, "max_gb": max_gb})
    command = [sys.executable, str(Path(__file__).resolve()), "--child", request]
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **CHILD_ENV},
    )
    watched = psutil.Process(child.pid)
    while True:
        try:
            stdout, stderr = child.communicate(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            try:
                times = watched.cpu_times()
            except psutil.NoSuchProcess:
                continue
            if times.user + times.system > limit:
                child.kill()
                child.communicate()
                return Outcome(
                    cell,
                    note=f"stopped after {limit:.0f} CPU s (over the {max_seconds:.0f} s budget)",
                )
    finished = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    if finished.returncode != 0:
        lines = (finished.stderr or "").strip().splitlines() or [f"exit {finished.returncode}"]
        if finished.returncode < 0:
            lines = [f"killed by signal {-finished.returncode} (out of memory?)"]
        return Outcome(cell, note=f"failed: {lines[-1][:120]}")
    answer = json.loads(finished.stdout.strip().splitlines()[-1])
    if "alternative" in answer:
        return Outcome(
            cell,
            estimate_mb=float(answer["estimate_mb"]),
            note=f"skipped: needs ~{answer['estimate_mb'] / 1024:.1f} GB (cap "
            f"{answer['limit_mb'] / 1024:.1f} GB); instead: {answer['alternative']}",
        )
    return Outcome(
        cell,
        fit_seconds=float(answer["fit_seconds"]),
        wall_seconds=float(answer["wall_seconds"]),
        peak_mb=float(answer["peak_mb"]),
        estimate_mb=float(answer["estimate_mb"]),
        package_mb=float(answer["package_mb"]),
        sequences=int(answer["sequences"]),
        note="1 epoch" if cell.model in NEURAL_MODELS else "",
        extra={"meter": str(answer["meter"])},
    )


# -- the grid ------------------------------------------------------------------------------------


def grid(models: list[str], interactions: list[int], items: list[int]) -> list[Cell]:
    """Cells by model and task, each model's cells from small to large."""
    from segue.models.base import TASKS, model_class

    cells = []
    for name in models:
        cls = model_class(name)
        for task in TASKS:
            # Order-aware models serve next-song; on user rows they would repeat the same cost.
            if task in cls.tasks and not (task == "user-items" and cls.uses_order):
                cells += [Cell(name, task, n, i) for n in interactions for i in items]
    return cells


def measure(cell: Cell, done: list[Outcome], max_gb: float, max_seconds: float) -> Outcome:
    """Skip the cell when its time estimate breaks the budget, otherwise fit it (the child
    skips it when the model's memory estimate breaks the cap)."""
    if (slow := stopped_below(cell, done)) is not None:
        smaller = f"{short_count(slow.cell.interactions)} x {short_count(slow.cell.items)}"
        return Outcome(cell, note=f"skipped: {smaller} was stopped at the time limit")
    expected = predicted_seconds(cell, done)
    if expected is not None and expected > max_seconds:
        return Outcome(
            cell,
            note=f"skipped: needs ~{expected:.0f} s (over the {max_seconds:.0f} s budget)",
        )
    return run_in_child(cell, max_gb, max_seconds)


# -- tables --------------------------------------------------------------------------------------


def short_count(value: int) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fits_table(outcomes: list[Outcome]) -> str:
    header = [
        "model",
        "task",
        "interactions",
        "items",
        "sequences",
        "fit CPU s",
        "wall s",
        "peak MB",
        "estimate MB",
        "package MB",
        "note",
    ]
    rows = [
        [
            o.cell.model,
            o.cell.task,
            short_count(o.cell.interactions),
            short_count(o.cell.items),
            "—" if o.sequences is None else str(o.sequences),
            number(o.fit_seconds),
            number(o.wall_seconds),
            number(o.peak_mb, 1),
            number(o.estimate_mb, 0),
            number(o.package_mb, 1),
            o.note,
        ]
        for o in outcomes
    ]
    return markdown(header, rows)


def exponents_table(outcomes: list[Outcome]) -> str:
    header = [
        "model",
        "task",
        "time ~ interactions^b",
        "time ~ items^c",
        "memory ~ interactions^b",
        "memory ~ items^c",
        "cells (time / memory)",
    ]
    rows = []
    for model, task in dict.fromkeys((o.cell.model, o.cell.task) for o in outcomes):
        mine = [o for o in outcomes if (o.cell.model, o.cell.task) == (model, task)]
        time_fit = growth_exponents(mine, "fit_seconds")
        memory_fit = growth_exponents(mine, "peak_mb")
        rows.append(
            [
                model,
                task,
                number(time_fit["interactions"]),
                number(time_fit["items"]),
                number(memory_fit["interactions"]),
                number(memory_fit["items"]),
                f"{time_fit['points']} / {memory_fit['points']}",
            ]
        )
    return markdown(header, rows)


def report(outcomes: list[Outcome], command: str, max_gb: float, max_seconds: float) -> str:
    meters = sorted({o.extra["meter"] for o in outcomes if "meter" in o.extra})
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "## Fit cost by size",
            "",
            f"`{command}` on {when}; {os.cpu_count()} cores shared, one thread per fit, "
            f"caps {max_gb:g} GB and {max_seconds:g} CPU s per fit. Fit time is the process's "
            "CPU time (wall time beside it, inflated by the neighbours on the shared cores); "
            "peak memory is above the process's start (meter: "
            f"{', '.join(meters) or 'none ran'}), estimate is the model's own "
            "`estimate_fit_bytes`; package is the saved arrays + JSON. Neural models: 1 epoch, "
            "no validation.",
            "",
            fits_table(outcomes),
            "",
            "## Growth exponents (cost = a · interactions^b · items^c, least squares on log-log)",
            "",
            f"Only cells of at least {MIN_FIT_SECONDS} s / {MIN_PEAK_MB:g} MB count; — where an "
            "axis has fewer than two such cells.",
            "",
            exponents_table(outcomes),
            "",
        ]
    )


def parse_counts(text: str) -> list[int]:
    return sorted(int(float(part)) for part in text.split(",") if part.strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the two smallest sizes")
    parser.add_argument("--max-gb", type=float, default=8.0, help="skip fits estimated above this")
    parser.add_argument(
        "--max-seconds", type=float, default=120.0, help="skip fits predicted above this"
    )
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--interactions", default="", help="comma-separated interaction counts")
    parser.add_argument("--items", default="", help="comma-separated catalogue sizes")
    parser.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        request = json.loads(args.child)
        print(json.dumps(fit_one(Cell(**request["cell"]), float(request["max_gb"]))))
        return

    from tqdm.auto import tqdm

    from segue.models.base import MODEL_NAMES

    models = [m.strip() for m in args.models.split(",") if m.strip()] or list(MODEL_NAMES)
    interactions = parse_counts(args.interactions) or list(INTERACTIONS)
    items = parse_counts(args.items) or list(ITEMS)
    if args.quick:
        interactions, items = interactions[:2], items[:2]
    outcomes: list[Outcome] = []
    bar = tqdm(grid(models, interactions, items), unit="fit", desc="scale")
    for cell in bar:
        bar.set_postfix_str(
            f"{cell.model} {short_count(cell.interactions)}x{short_count(cell.items)}"
        )
        same = [o for o in outcomes if (o.cell.model, o.cell.task) == (cell.model, cell.task)]
        outcome = measure(cell, same, args.max_gb, args.max_seconds)
        outcomes.append(outcome)
        bar.write(
            f"{cell.model:12s} {cell.task:10s} {short_count(cell.interactions):>4s} x "
            f"{short_count(cell.items):>4s}  fit {number(outcome.fit_seconds):>7s} s CPU "
            f"peak {number(outcome.peak_mb, 1):>8s} MB  package {number(outcome.package_mb, 1):>7s} MB"
            f"  {outcome.note}"
        )
    bar.close()
    command = "python benchmarks/scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = report(outcomes, command.strip(), args.max_gb, args.max_seconds)
    print("\n" + text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
