"""`segue simulate` and `segue monitor` as a scheduler runs them: a real `segue serve` process on a
loopback port, simulated users, the event log it writes, and the check's exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from dataset_support import write_playlists
from lifecycle_support import free_port, stop_process_group, wait_until_answers
from segue.cli.main import app
from segue.cli.monitor import parse_moment
from segue.jobs.pipeline import run_pipeline
from segue.monitoring.events import read_event_log
from segue.settings import load_settings

EVENTS = Path(".segue/events")
runner = CliRunner()


@pytest.fixture
def served(empty_store: Path) -> str:
    """A next-song champion (markov on 200 chain playlists) served by `segue serve`; its URL."""
    Path(".segue").mkdir()
    shutil.copyfile(empty_store, ".segue/mlflow.db")
    write_playlists(Path("playlists"), n_playlists=200, n_items=12)
    summary = run_pipeline(load_settings("dev"), "next-song", Path("playlists"), progress=False)
    assert summary.ok, summary.error
    port = free_port()
    log = Path("server.log")
    segue = Path(sys.executable).with_name("segue")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(segue),
                "--set",
                "serving.reload_interval_seconds=0",
                "--set",
                "monitoring.event_flush_seconds=0.2",
                "serve",
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/readyz", process, log)
        yield url
    finally:
        stop_process_group(process)


def wait_for_lists(count: int, since: datetime) -> None:
    """Until the server's writer has flushed ``count`` lists served after ``since``."""
    deadline = time.monotonic() + 60
    while len(read_event_log(EVENTS, since=since).lists) < count:
        assert time.monotonic() < deadline, "the server did not write its events"
        time.sleep(0.1)


def simulate(url: str, *extra: str) -> str:
    result = runner.invoke(
        app,
        [
            "simulate",
            "--task",
            "next-song",
            "--data",
            "playlists",
            "--url",
            url,
            "--k",
            "5",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_simulated_traffic_is_healthy_and_drifted_traffic_fires_the_check(served: str) -> None:
    start = datetime.now(UTC)
    output = simulate(served)
    # 20 held-out playlists of 6 songs: 5 prefixes each, a click whenever the next song is shown
    assert "20 sessions, 100 lists, 500 impressions" in output
    wait_for_lists(100, start)

    healthy = runner.invoke(app, ["monitor", "check", "--since", start.isoformat()])
    assert healthy.exit_code == 0, healthy.output
    assert "status: healthy" in healthy.output
    assert (EVENTS / "check.json").exists()

    shifted = datetime.now(UTC)
    assert "simulated drifted next-song traffic" in simulate(served, "--drift")
    wait_for_lists(100, shifted)
    alert = runner.invoke(app, ["monitor", "check", "--since", shifted.isoformat()])
    assert alert.exit_code == 1, alert.output
    assert "ALERT drift_unknown_item_rate" in alert.output
    assert "threshold 0.1" in alert.output
    # The server exports the check's verdicts as gauges.
    metrics = httpx.get(f"{served}/metrics").text
    assert 'segue_monitoring_alert{check="drift_unknown_item_rate"} 1.0' in metrics
    assert 'segue_monitoring_alert{check="banned_items_served"} 0.0' in metrics

    report = runner.invoke(
        app, ["monitor", "report", "--since", start.isoformat(), "--out", "report", "--no-track"]
    )
    assert report.exit_code == 0, report.output
    assert "200 lists" in report.output and "ALERT next-song v1" in report.output
    assert Path("report/report.html").exists() and Path("report/report.json").exists()

    # The champion re-scored on the same data: no decline.
    fresh = runner.invoke(
        app, ["monitor", "evaluate", "--task", "next-song", "--data", "playlists"]
    )
    assert fresh.exit_code == 0, fresh.output
    assert "ok: next-song v1 ndcg_at_10" in fresh.output and "(drop 0.0%" in fresh.output


def test_simulate_refuses_a_server_that_is_not_on_loopback() -> None:
    result = runner.invoke(
        app,
        ["simulate", "--task", "next-song", "--data", "x", "--url", "http://example.com:8000"],
    )
    assert result.exit_code == 2
    assert "loopback" in result.output


def test_simulate_says_when_no_server_answers() -> None:
    write_playlists(Path("playlists"), n_playlists=40, n_items=12)
    result = runner.invoke(
        app,
        [
            "simulate",
            "--task",
            "next-song",
            "--data",
            "playlists",
            "--url",
            f"http://127.0.0.1:{free_port()}",
        ],
    )
    assert result.exit_code == 2
    assert "cannot reach the server" in result.output


def test_report_over_an_empty_window_says_so_and_exits_0() -> None:
    result = runner.invoke(app, ["monitor", "report", "--since", "2h", "--out", "r", "--no-track"])
    assert result.exit_code == 0, result.output
    assert "no lists served and no feedback" in result.output
    assert Path("r/report.json").exists()


def test_check_exits_2_when_it_cannot_run() -> None:
    result = runner.invoke(app, ["--set", "monitoring.event_log_dir=", "monitor", "check"])
    assert result.exit_code == 2
    assert "could not run" in result.output and "event log is off" in result.output


def test_time_options_take_iso_times_and_durations() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert parse_moment("2h", now) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_moment("30m", now) == datetime(2026, 12, 1, 11, 30, tzinfo=UTC)
    assert parse_moment("2026-11-30", now) == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_moment("2026-11-30T08:00:00+01:00", now).hour == 8
    assert parse_moment(None, now) is None
    result = runner.invoke(app, ["monitor", "report", "--since", "yesterday-ish"])
    assert result.exit_code == 2 and "duration before now" in result.output
