"""`segue demo`: the whole loop on the bundled sample.

Ingest, train, evaluate, register and promote each task's champion; start the server; replay
held-out sessions against it as simulated users (``segue simulate``); write the monitoring report
of that traffic (``segue monitor report``); then keep serving, so the page's Monitoring tab shows
it. With ``--no-serve`` the server runs only while the traffic is sent, and stops before the
report is written.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segue.cli.context import fail, get_context, print_wide
from segue.cli.lifecycle import pipeline_table
from segue.serving import HTTP_PROTOCOL
from segue.tracking.stores import absolute_store

if TYPE_CHECKING:
    from segue.settings import Settings

START_TIMEOUT_SECONDS = 120.0
LOOPBACK = "127.0.0.1"


def demo(
    ctx: typer.Context,
    no_serve: Annotated[
        bool,
        typer.Option("--no-serve", help="Run the job, the traffic and the report, then exit."),
    ] = False,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to serve on (default serving.port).")
    ] = None,
    sessions: Annotated[
        int, typer.Option("--sessions", min=0, help="Simulated sessions per task (0 = none).")
    ] = 40,
    seconds: Annotated[
        float, typer.Option("--seconds", min=1, help="Most seconds of simulated traffic per task.")
    ] = 60.0,
) -> None:
    """Ingest the bundled sample, train, register, promote, simulate users, report, serve."""
    from segue.jobs.pipeline import run_pipeline
    from segue.sample.synth import sample_path, write_demo_ratings

    settings = absolute_store(get_context(ctx).settings())
    sources = {
        "next-song": sample_path("playlists.json"),
        "user-items": write_demo_ratings(settings.data.root / "demo-ratings"),
    }
    summaries = []
    for task, source in sources.items():
        typer.secho(f"\n== {task}: sample {source}", bold=True)
        summary = run_pipeline(settings, task, source)
        print_wide(pipeline_table(summary))
        summaries.append(summary)
        if not summary.ok:
            fail(f"demo stopped: {task} {summary.error}")
    datasets = {summary.task: summary.dataset_dir for summary in summaries}

    typer.secho("\nWhere to look", bold=True)
    for summary in summaries:
        typer.echo(
            f"  {summary.task}: dataset {summary.dataset_dir} "
            f"(dataset.json, rejected.jsonl); champion version {summary.champion}"
        )
    typer.echo(
        f"  runs and registry: mlflow ui --backend-store-uri {settings.tracking.tracking_uri}"
    )
    typer.echo("  versions and metrics: segue models list --task next-song")

    from segue.serving.app import create_app

    traffic = sessions > 0 and settings.monitoring.event_log_dir is not None
    if not traffic:
        typer.echo("  (no simulated traffic: --sessions 0 or monitoring.event_log_dir is empty)")
    if no_serve:
        if traffic:
            server = BackgroundServer(create_app(settings), LOOPBACK, port or free_port())
            started = datetime.now(UTC)
            with server:
                _simulate(settings, datasets, server.url, sessions, seconds)
            # The server has stopped: its event log is flushed, the report sees every list.
            _report(settings, started)
        typer.echo("  serve the champions: segue serve")
        return

    import uvicorn

    bind_port = port or settings.serving.port
    if traffic:
        url = f"http://{LOOPBACK}:{bind_port}"
        threading.Thread(
            target=_traffic_then_report,
            args=(settings, datasets, url, sessions, seconds),
            name="segue-demo-traffic",
            daemon=True,
        ).start()
    typer.secho(
        f"\nServing on http://{settings.serving.host}:{bind_port}  (page at /, its Monitoring "
        "tab, docs at /docs, metrics at /metrics; Ctrl+C stops)",
        bold=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.serving.host,
        port=bind_port,
        log_level="warning",
        http=HTTP_PROTOCOL,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


class BackgroundServer:
    """A uvicorn server on a thread of this process, for as long as a ``with`` block lasts;
    leaving the block shuts it down the way Ctrl+C does (the event log is flushed)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", http=HTTP_PROTOCOL)
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.run, name="segue-demo-server")

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                fail(f"the demo server at {self.url} did not start")
            time.sleep(0.05)
        wait_until_ready(self.url)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join()


def wait_until_ready(url: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Poll ``/readyz`` until the server has its models loaded."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    fail(f"{url} did not become ready in {timeout:.0f} s")


def _simulate(
    settings: Settings, datasets: dict[str, Path | None], url: str, sessions: int, seconds: float
) -> int:
    """Simulated users of every task; the number of lists they were served."""
    from segue.cli.monitor import simulation_line
    from segue.jobs.simulate import simulate_traffic

    typer.secho(f"\nSimulated traffic against {url}", bold=True)
    served = 0
    for task, dataset in datasets.items():
        if dataset is None:
            continue
        summary = simulate_traffic(
            settings, task, dataset, url, sessions=sessions, seconds=seconds, progress=False
        )
        typer.echo(f"  {simulation_line(summary)}")
        served += summary.lists
    return served


def _report(settings: Settings, since: datetime) -> None:
    from segue.cli.monitor import report_summary_lines
    from segue.jobs.monitor import run_report

    outcome = run_report(settings, since=since)
    typer.secho("\nMonitoring report", bold=True)
    for line in report_summary_lines(outcome.report):
        typer.echo(f"  {line}")
    typer.echo(f"  report: {outcome.directory / 'report.html'} (and report.json)")
    if outcome.run_id:
        typer.echo(f"  logged to MLflow run {outcome.run_id}")
    typer.echo("  check it as a scheduler would: segue monitor check || segue pipeline run ...")


def _traffic_then_report(
    settings: Settings, datasets: dict[str, Path | None], url: str, sessions: int, seconds: float
) -> None:
    """While the demo serves: wait for readiness, simulate, wait for the event log, report."""
    from segue.jobs.monitor import event_log_dir
    from segue.monitoring.events import read_event_log

    started = datetime.now(UTC)
    try:
        wait_until_ready(url)
        served = _simulate(settings, datasets, url, sessions, seconds)
        # The running server writes its events every monitoring.event_flush_seconds.
        deadline = time.monotonic() + settings.monitoring.event_flush_seconds + 30
        while time.monotonic() < deadline:
            if len(read_event_log(event_log_dir(settings), since=started).lists) >= served:
                break
            time.sleep(0.5)
        _report(settings, started)
    except (Exception, typer.Exit) as error:  # the server keeps serving; say what went wrong
        typer.secho(f"demo traffic or report failed: {error!r}", err=True, fg=typer.colors.RED)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
