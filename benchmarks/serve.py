"""Serving speed on one packaged EASE model of ml-latest-small: Segue's HTTP API, `mlflow models
serve` on the same registered model, and in-process scoring (the ceiling of any server).

Every request is a new user's history (up to --history items, seeded) asking for k=10 unseen
movies: ``POST /v1/users/recommendations`` for Segue, ``POST /invocations`` for MLflow; one more
Segue row asks for every known user's list (``GET /v1/users/{id}/recommendations``). The Segue
rows run with the event log off (``monitoring.event_log_dir=""``), except "Segue, event log on",
which writes every served list and its items to Parquet parts as a deployment does. Traffic
stays on 127.0.0.1 and every run is bounded by --seconds. The load generator is a separate
process: ``wrk`` when installed (apt-get install wrk), else Python threads with httpx.

    nice -n 10 .venv/bin/python benchmarks/serve.py [--seconds 10] [--concurrency 1 8 32]

Goals: Segue >= 3x the requests per second of `mlflow models serve` at concurrency 8, >= 70% of
in-process throughput, p99 < 25 ms at concurrency 8; with the event log on, >= 90% of the
throughput with it off.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MOVIELENS = REPO.parent / "shared" / "data" / "ml-latest-small"
BIN = Path(sys.executable).parent
START_SECONDS = 240.0
# wrk scripts: POST one JSON body per line of $BENCH_REQUESTS, or GET one path per line.
WRK_POST = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_REQUESTS")) do bodies[#bodies + 1] = line end
local next_body = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end
"""
WRK_GET = """
local paths = {}
for line in io.lines(os.getenv("BENCH_REQUESTS")) do paths[#paths + 1] = line end
local next_path = 0
request = function()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end
"""


@dataclass
class Measurement:
    system: str
    concurrency: int | str
    requests_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int

    def row(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        return (
            f"| {self.system} | {self.concurrency} | {self.requests_per_second:,.0f} | "
            f"{ms(self.p50_ms)} | {ms(self.p99_ms)} | {self.errors} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("SEGUE_DATA", DEFAULT_MOVIELENS.parent)) / "ml-latest-small",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each load run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--history", type=int, default=50, help="most items per request history")
    parser.add_argument("--requests", type=int, default=500, help="distinct request bodies")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="segue serve worker processes"
    )
    parser.add_argument(
        "--skip-mlflow", action="store_true", help="leave out `mlflow models serve`"
    )
    parser.add_argument(
        "--skip-event-log", action="store_true", help='leave out "Segue, event log on"'
    )
    parser.add_argument(
        "--load",
        nargs=4,
        metavar=("URL", "BODIES", "CONCURRENCY", "SECONDS"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.load:
        url, bodies, concurrency, seconds = args.load
        print(json.dumps(python_load(url, Path(bodies), int(concurrency), float(seconds)).__dict__))
        return 0

    if not (args.data / "ratings.csv").exists():
        print(f"skipped: ml-latest-small not found at {args.data} (set SEGUE_DATA)")
        return 0
    try:
        from segue.models.base import model_class

        model_class("ease")
    except (ImportError, ValueError) as error:
        print(f"skipped: the ease model is not available ({error})")
        return 0
    warn_if_busy()

    with tempfile.TemporaryDirectory(prefix="segue-bench-serve-") as scratch:
        work = Path(scratch)
        settings_args = [
            f"tracking.tracking_uri='sqlite:///{work / 'mlflow.db'}'",
            f"tracking.artifact_root='{work / 'artifacts'}'",
            f"tracking.model_cache_dir='{work / 'cache'}'",
            "serving.tasks=['user-items']",
            "serving.reload_interval_seconds=0",
        ]
        from segue.settings import load_settings

        settings = load_settings("dev", settings_args)
        package = build_package(args.data, work / "dataset", settings)
        champion = register(settings, package)
        bodies = request_histories(package, args.requests, args.history, seed=42)
        segue_bodies = work / "segue.jsonl"
        segue_bodies.write_text(
            "".join(json.dumps({"history": keys, "k": 10}) + "\n" for keys in bodies)
        )
        mlflow_bodies = work / "mlflow.jsonl"
        mlflow_bodies.write_text(
            "".join(
                json.dumps(
                    {
                        "dataframe_split": {"columns": ["history"], "data": [[keys]]},
                        "params": {"k": 10},
                    }
                )
                + "\n"
                for keys in bodies
            )
        )

        user_paths = work / "users.paths"
        user_paths.write_text(
            "".join(f"/v1/users/{user}/recommendations?k=10\n" for user in package.user_histories)
        )

        results = [in_process(settings, bodies, args.seconds)]
        print(results[-1].row(), flush=True)
        runs = [("Segue" if w == 1 else f"Segue, {w} workers", w, "''") for w in args.workers]
        if not args.skip_event_log:
            runs.insert(1, ("Segue, event log on", 1, f"'{work / 'events'}'"))
        for system, workers, event_log_dir in runs:
            port = free_port()
            command = [
                str(BIN / "segue"),
                *[f"--set={s}" for s in settings_args],
                f"--set=monitoring.event_log_dir={event_log_dir}",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ]
            base = f"http://127.0.0.1:{port}"
            with running(command, work, f"{base}/readyz", f"segue serve {workers}"):
                for concurrency in args.concurrency:
                    url = f"{base}/v1/users/recommendations"
                    results.append(load(system, url, segue_bodies, concurrency, args.seconds))
                    print(results[-1].row(), flush=True)
                if system == "Segue":
                    known = load(f"{system}, known users (GET)", base, user_paths, 8, args.seconds)
                    results.append(known)
                    print(known.row(), flush=True)
        if args.skip_mlflow:
            print("mlflow models serve: skipped (--skip-mlflow)")
        else:
            port = free_port()
            command = [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{champion.name}@champion",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            # MLflow starts `uvicorn` by name: the venv's bin must be on PATH.
            environment = {
                "MLFLOW_TRACKING_URI": settings.tracking.tracking_uri,
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            }
            with running(
                command, work, f"http://127.0.0.1:{port}/ping", "mlflow models serve", environment
            ):
                for concurrency in args.concurrency:
                    url = f"http://127.0.0.1:{port}/invocations"
                    results.append(
                        load("mlflow models serve", url, mlflow_bodies, concurrency, args.seconds)
                    )
                    print(results[-1].row(), flush=True)
    report(results, package.scorer.n_items, args)
    return 0


def warn_if_busy() -> None:
    import psutil

    busy = psutil.cpu_percent(interval=1.0)
    if busy > 40:
        print(f"warning: the machine is {busy:.0f}% busy; figures will be low and noisy")


def build_package(source: Path, target: Path, settings):
    """Every ml-latest-small rating as a positive, EASE fitted on all of it, packaged."""
    from segue.data.dataset import Dataset
    from segue.data.ingest import ingest_ratings
    from segue.models.base import create_model
    from segue.tracking.package import ModelPackage, histories_by_id

    # No rule drops anything: the whole catalogue of rated movies (9,724) is served.
    data = settings.data.model_copy(
        update={"implicit_threshold": 0.0, "max_sequence_length": 1_000_000}
    )
    ingest_ratings(source, target, data, progress=False)
    dataset = Dataset.load(target)
    interactions = dataset.sequences(order_by="timestamp")
    started = time.perf_counter()
    scorer = create_model("ease", settings.model_params("ease")).fit(interactions)
    print(
        f"EASE on {len(interactions)} users x {interactions.n_items} items "
        f"fitted in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return ModelPackage(
        "user-items",
        scorer,
        dataset.items,
        histories_by_id(interactions),
        metadata={"dataset_fingerprint": dataset.fingerprint, "metrics": {"ndcg_at_10": 0.0}},
    )


def register(settings, package):
    from segue.tracking.registry import CHAMPION, open_registry

    registry = open_registry(settings)
    version = registry.publish(package)
    registry.set_alias(version.name, CHAMPION, version.version)
    return version


def request_histories(package, count: int, longest: int, seed: int) -> list[list[str]]:
    """Histories of new users: random subsets of real users' histories, as item keys."""
    rng = np.random.default_rng(seed)
    keys = package.items.sort_values("item")["key"].astype(str).to_numpy()
    users = list(package.user_histories.values())
    bodies = []
    for _ in range(count):
        history = users[rng.integers(len(users))]
        size = int(rng.integers(1, min(longest, len(history)) + 1))
        bodies.append(keys[rng.choice(history, size=size, replace=False)].tolist())
    return bodies


def in_process(settings, bodies: list[list[str]], seconds: float) -> Measurement:
    """The same champion, loaded the same way, called directly: no HTTP, one thread."""
    from segue.ranking.postprocess import PostProcessConfig
    from segue.serving.recommender import ListRules, ModelVersion, ServingModel
    from segue.tracking.package_cache import load_champion
    from segue.tracking.registry import open_registry

    info, package = load_champion(open_registry(settings), "user-items")
    model = ServingModel("user-items", ModelVersion.from_info(info), package, 85.0)
    rules = ListRules(PostProcessConfig.from_settings(settings.serving))
    latencies = []
    deadline = time.perf_counter() + seconds
    index = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        model.recommend(model.history_request(bodies[index % len(bodies)], 10, rules))
        latencies.append(time.perf_counter() - started)
        index += 1
    total = sum(latencies)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return Measurement("in-process", 1, len(latencies) / total, float(p50), float(p99), 0)


class running:
    """A server subprocess for the duration of a with block, stopped by its PID."""

    def __init__(self, command, cwd: Path, ready_url: str, name: str, environment=None):
        self.command, self.cwd, self.ready_url, self.name = command, cwd, ready_url, name
        self.environment = {**os.environ, **(environment or {})}
        self.log = cwd / f"{name.replace(' ', '-')}.log"

    def __enter__(self):
        import httpx

        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.environment,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"{self.name} was not ready within {START_SECONDS:.0f} s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load(system: str, url: str, bodies: Path, concurrency: int, seconds: float) -> Measurement:
    """Requests per second and latency of ``url`` under ``concurrency`` open connections.

    ``bodies`` holds one JSON body per line (POST), or one path per line when it ends in
    ``.paths`` (GET, ``url`` being the server's base URL).
    """
    if shutil.which("wrk"):
        return wrk_load(system, url, bodies, concurrency, seconds)
    output = subprocess.run(
        [sys.executable, __file__, "--load", url, str(bodies), str(concurrency), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    measured = Measurement(**json.loads(output.strip().splitlines()[-1]))
    measured.system = system
    return measured


def wrk_load(system: str, url: str, bodies: Path, concurrency: int, seconds: float) -> Measurement:
    script = bodies.with_suffix(".lua")
    script.write_text(WRK_GET if bodies.suffix == ".paths" else WRK_POST)
    threads = min(concurrency, 2)
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_REQUESTS": str(bodies)},
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return Measurement(
        system,
        concurrency,
        rate,
        wrk_percentile(output, "50"),
        wrk_percentile(output, "99"),
        errors,
    )


def wrk_percentile(output: str, percent: str) -> float | None:
    found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not found:
        return None
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def python_load(url: str, bodies: Path, concurrency: int, seconds: float) -> Measurement:
    """The fallback load generator: one keep-alive httpx client per thread."""
    import httpx

    payloads = bodies.read_text().splitlines()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    deadline = time.perf_counter() + seconds

    def worker(index: int) -> None:
        with httpx.Client(timeout=10, headers={"content-type": "application/json"}) as client:
            request = index
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                payload = payloads[request % len(payloads)]
                if bodies.suffix == ".paths":
                    response = client.get(url + payload)
                else:
                    response = client.post(url, content=payload)
                latencies[index].append(time.perf_counter() - started)
                errors[index] += response.status_code != 200
                request += concurrency

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    flat = [value for values in latencies for value in values]
    p50, p99 = np.percentile(flat, [50, 99]) * 1000
    return Measurement("", concurrency, len(flat) / elapsed, float(p50), float(p99), sum(errors))


def report(results: list[Measurement], n_items: int, args: argparse.Namespace) -> None:
    generator = "wrk" if shutil.which("wrk") else "python threads + httpx"
    print(
        f"\nServing EASE, ml-latest-small ({n_items:,} items), k=10, histories of 1-{args.history} "
        f"items, {args.seconds:.0f} s per run, load from {generator}, {os.cpu_count()} cores\n"
    )
    print("| system | concurrency | requests/s | p50 ms | p99 ms | errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for result in results:
        print(result.row())
    by = {(r.system, r.concurrency): r for r in results}
    segue8, mlflow8 = by.get(("Segue", 8)), by.get(("mlflow models serve", 8))
    inproc = by.get(("in-process", 1))
    posts = [r for r in results if r.system.startswith("Segue") and "GET" not in r.system]
    print()
    if segue8 and mlflow8 and mlflow8.requests_per_second > 0:
        ratio = segue8.requests_per_second / mlflow8.requests_per_second
        print(f"Segue / mlflow models serve at concurrency 8: {ratio:.1f}x (goal >= 3x)")
    else:
        print("Segue / mlflow models serve at concurrency 8: missing")
    if segue8 and inproc and posts:
        best = max(posts, key=lambda r: r.requests_per_second)
        print(
            f"Segue at concurrency 8 / in-process: "
            f"{segue8.requests_per_second / inproc.requests_per_second:.0%}; best "
            f"({best.system}, concurrency {best.concurrency}): "
            f"{best.requests_per_second / inproc.requests_per_second:.0%} (goal >= 70%)"
        )
    if segue8 and segue8.p99_ms is not None:
        print(f"Segue p99 at concurrency 8: {segue8.p99_ms:.1f} ms (goal < 25 ms)")
    for result in results:
        off = by.get(("Segue", result.concurrency))
        if result.system == "Segue, event log on" and off and off.requests_per_second > 0:
            print(
                f"Event log on / off at concurrency {result.concurrency}: "
                f"{result.requests_per_second / off.requests_per_second:.0%} (goal >= 90%)"
            )


if __name__ == "__main__":
    sys.exit(main())
