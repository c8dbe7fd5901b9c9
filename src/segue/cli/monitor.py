"""`segue monitor report|evaluate|check` and `segue simulate`: the monitoring loop's edges.

Thin edges over ``segue.jobs.monitor`` and ``segue.jobs.simulate``. ``segue monitor check`` exits
0 when healthy, 1 when an alert fired, 2 when it could not run, so a scheduler can write
``segue monitor check || segue pipeline run --task T --data PATH``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segue.cli.context import EXIT_BAD_INPUT, EXIT_FAILED, fail, get_context

if TYPE_CHECKING:
    from segue.jobs.simulate import SimulationSummary

monitor_app = typer.Typer(
    help="Reports on served lists and feedback, drift, metric decline, alerts.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TIME_HELP = "ISO 8601 time (UTC when no zone) or a duration before now, e.g. 2h, 30m, 7d."


def parse_moment(text: str | None, now: datetime | None = None) -> datetime | None:
    """``--since``/``--until``: an ISO 8601 date or time, or ``<n><s|m|h|d>`` before now."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: {TIME_HELP}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


SinceOption = Annotated[str | None, typer.Option("--since", help=f"Window start. {TIME_HELP}")]
UntilOption = Annotated[
    str | None, typer.Option("--until", help=f"Window end (default now). {TIME_HELP}")
]
TaskFilter = Annotated[
    str | None, typer.Option("--task", help="Only this task: next-song or user-items.")
]


def _check_task(task: str | None) -> None:
    from segue.models.base import TASKS

    if task is not None and task not in TASKS:
        fail(f"unknown task {task!r}; expected one of {', '.join(TASKS)}", code=EXIT_BAD_INPUT)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def report_summary_lines(report: dict[str, Any]) -> list[str]:
    """A few lines a person reads in a terminal: per model version, then the alerts."""
    window = report["window"]
    totals = report["totals"]
    lines = [
        f"window {window['since']} .. {window['until']}: {totals['lists_served']} lists, "
        f"{totals['feedback_events']} feedback events ({totals['unattributed_feedback']} "
        "unattributed)"
    ]
    if report.get("empty"):
        return [*lines, report["message"]]
    for group in report["groups"]:
        service, outcomes = group["service"], group["outcomes"]
        guardrails, health = group["guardrails"], group["output_health"]
        lines += [
            f"{group['task']} v{group['model_version']} ({group['algorithm']}): "
            f"{service['lists_served']} lists, fallback {_percent(service['fallback_rate'])}, "
            f"unmatched inputs {_percent(service['unmatched_input_rate'])}, latency p50 "
            f"{_number(service['latency_p50_ms'], 1)} ms / p99 "
            f"{_number(service['latency_p99_ms'], 1)} ms",
            f"  CTR@{report['k']} {_percent(outcomes['click_through_rate'])} of "
            f"{outcomes['impressions']} impressions, acceptance "
            f"{_percent(outcomes['acceptance_rate'])}, MRR of first click "
            f"{_number(outcomes['mrr_first_click'])}",
            f"  guardrails: banned {guardrails['banned_items_served']}, excluded "
            f"{guardrails['excluded_items_served']}, duplicates {guardrails['duplicate_items']}, "
            f"short lists {_percent(guardrails['short_lists'])}",
            f"  output: coverage {_percent(health['catalogue_coverage'])}, exposure Gini "
            f"{_number(health['exposure_gini'])}, popularity percentile "
            f"{_number(health['mean_popularity_percentile'])}, novelty "
            f"{_number(health['novelty_bits'], 2)} bits, personalization "
            f"{_number(health['personalization'])}, artist diversity "
            f"{_number(health['intra_list_artist_diversity'])}",
        ]
        drift = group.get("drift", {})
        tested = [r for r in drift.values() if isinstance(r, dict) and "alert" in r]
        if tested:
            lines.append(
                "  drift: "
                + "; ".join(
                    f"{r['check']} {_number(r['effect'])}" + (" ALERT" if r["alert"] else "")
                    for r in tested
                )
            )
    alerts = report.get("alerts", [])
    lines.append(f"alerts: {len(alerts)}")
    lines += [f"  ALERT {a['task']} v{a['model_version']} {a['message']}" for a in alerts]
    return lines


def report(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    task: TaskFilter = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for report.json and report.html "
            "(default <monitoring.report_dir>/<time>).",
        ),
    ] = None,
    track: Annotated[
        bool, typer.Option(help="Log the report to an MLflow run tagged with its versions.")
    ] = True,
) -> None:
    """Report on served lists and feedback: report.json, report.html, an MLflow run.

    Per task and model version: service, online outcomes, guardrails, output health and input
    drift over the window.
    """
    from segue.jobs.monitor import MonitoringError, run_report
    from segue.tracking.runs import TrackingError

    _check_task(task)
    settings = get_context(ctx).settings()
    try:
        outcome = run_report(
            settings,
            since=parse_moment(since),
            until=parse_moment(until),
            task=task,
            out_dir=out,
            track=track,
        )
    except MonitoringError as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    except TrackingError as error:
        fail(str(error), code=EXIT_FAILED)
    for line in report_summary_lines(outcome.report):
        typer.echo(line)
    for skipped in outcome.report["skipped_files"]:
        typer.secho(f"skipped {skipped['path']}: {skipped['reason']}", fg=typer.colors.YELLOW)
    for problem in outcome.report.get("problems", []):
        typer.secho(f"note: {problem}", fg=typer.colors.YELLOW)
    typer.echo(f"report: {outcome.directory / 'report.html'} and report.json")
    if outcome.run_id:
        typer.echo(f"logged to MLflow run {outcome.run_id}")


def evaluate(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", help="next-song or user-items.")],
    data: Annotated[
        Path,
        typer.Option("--data", help="Fresh data: raw files or a dataset `segue ingest` wrote."),
    ],
) -> None:
    """Re-score the champion on fresh data against its metrics at registration.

    Exits 1 when the headline metric dropped by more than monitoring.metric_decline_tolerance.
    """
    from segue.jobs.monitor import MonitoringError, evaluate_champion
    from segue.tracking.registry import RegistryError

    _check_task(task)
    settings = get_context(ctx).settings()
    try:
        result = evaluate_champion(settings, task, data)
    except (MonitoringError, RegistryError) as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    except ValueError as error:  # a dataset or protocol that does not fit
        fail(str(error), code=EXIT_BAD_INPUT)
    typer.echo(
        f"{task} champion v{result.version} on {data} ({result.protocol}, "
        f"{result.n_test_cases} test cases, {result.unknown_items} items it does not know)"
    )
    typer.echo(f"{'metric':<34}{'registered':>12}{'fresh':>12}{'change':>10}")
    for key in sorted(set(result.recorded) & set(result.fresh)):
        drop = result.relative_drop(key)
        change = "–" if drop is None else f"{0.0 - drop:+.1%}"  # 0.0 - 0.0 prints +0.0%
        typer.echo(f"{key:<34}{result.recorded[key]:>12.4f}{result.fresh[key]:>12.4f}{change:>10}")
    check = result.check()
    if check["alert"]:
        typer.secho(f"ALERT {check['message']}", fg=typer.colors.RED)
        raise typer.Exit(EXIT_FAILED)
    typer.echo(f"ok: {check['message']}")


def check(
    ctx: typer.Context,
    since: SinceOption = None,
    until: UntilOption = None,
    task: TaskFilter = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Fresh data for the offline decline check (needs --task)."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="A report.json whose click-through is the baseline (default: the previous "
            "window of the same length).",
        ),
    ] = None,
) -> None:
    """Guardrails, drift and metric decline: exit 0 healthy, 1 alert, 2 could not run.

    Writes check.json into the event-log directory; the server exports it as gauges.
    """
    from segue.jobs.monitor import run_check

    _check_task(task)
    settings = get_context(ctx).settings()
    outcome = run_check(
        settings,
        since=parse_moment(since),
        until=parse_moment(until),
        task=task,
        data=data,
        baseline=baseline,
    )
    for item in outcome.checks:
        where = (
            f"{item.get('task', '')} v{item['model_version']} " if "model_version" in item else ""
        )
        if item["alert"]:
            value = "–" if item["value"] is None else f"{item['value']:.4g}"
            typer.secho(
                f"ALERT {item['check']}: {where}{item['message']} "
                f"[value {value}, threshold {item['threshold']}]",
                fg=typer.colors.RED,
            )
    for note in outcome.notes:
        typer.secho(f"note: {note}", fg=typer.colors.YELLOW)
    quiet = len(outcome.checks) - len(outcome.alerts)
    typer.echo(
        f"status: {outcome.status} ({len(outcome.alerts)} alerts, {quiet} checks quiet)"
        + (f"; wrote {outcome.path}" if outcome.path else "")
    )
    raise typer.Exit(outcome.exit_code)


def simulate(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", help="next-song or user-items.")],
    data: Annotated[
        Path, typer.Option("--data", help="Raw files or a dataset: its held-out sessions are sent.")
    ],
    url: Annotated[
        str, typer.Option("--url", help="A running Segue server on a loopback address.")
    ] = "http://127.0.0.1:8000",
    drift: Annotated[
        bool,
        typer.Option("--drift", help="Shift the traffic: long-tail and unknown songs, new users."),
    ] = False,
    sessions: Annotated[int, typer.Option("--sessions", min=1, help="Most sessions sent.")] = 50,
    seconds: Annotated[
        float, typer.Option("--seconds", min=0.1, help="Most wall time, in seconds.")
    ] = 60.0,
    k: Annotated[int | None, typer.Option("--k", min=1, help="List length asked for.")] = None,
) -> None:
    """Replay held-out sessions against a running server (loopback only) as users would.

    Each request, the impressions of its list, and a click when the true next item is in it.
    """
    from segue.jobs.simulate import SimulationError, simulate_traffic

    _check_task(task)
    settings = get_context(ctx).settings()
    try:
        summary = simulate_traffic(
            settings, task, data, url, drift=drift, sessions=sessions, seconds=seconds, k=k
        )
    except SimulationError as error:
        fail(str(error), code=EXIT_BAD_INPUT)
    except ValueError as error:  # unreadable data, a protocol the data cannot support
        fail(str(error), code=EXIT_BAD_INPUT)
    typer.echo(simulation_line(summary))
    if summary.errors and not summary.lists:
        raise typer.Exit(EXIT_FAILED)


def simulation_line(summary: SimulationSummary) -> str:
    kind = "drifted" if summary.drift else "normal"
    return (
        f"simulated {kind} {summary.task} traffic: {summary.sessions} sessions, "
        f"{summary.lists} lists, {summary.impressions} impressions, {summary.clicks} clicks "
        f"(CTR {_percent(summary.click_through_rate)}), {summary.errors} errors, "
        f"{summary.seconds:.1f} s (stopped: {summary.stopped_by})"
    )


def register(app: typer.Typer) -> None:
    monitor_app.command("report")(report)
    monitor_app.command("evaluate")(evaluate)
    monitor_app.command("check")(check)
    app.add_typer(monitor_app, name="monitor")
    app.command("simulate")(simulate)
