"""``report.html``: the monitoring report as a page a person reads, plots first.

Four kinds of plot, drawn with matplotlib's Agg backend (imported only when a page is written)
and embedded in the page as PNG data, so the page is one file that opens anywhere: lists served
and feedback over time, click-through by position, the exposure concentration (Lorenz) curve,
and the drift histograms (reference against the window).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HTML_FILE = "report.html"
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
td, th { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f3f3f3; }
.alert { color: #a40000; font-weight: bold; }
.ok { color: #1b6e20; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5rem 0; }
"""


def _figure_data(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_series(report: Mapping[str, Any]) -> str | None:
    """Lists served and feedback events per time bucket."""
    series = report.get("series", {})
    if not series.get("lists") and not series.get("feedback"):
        return None
    import pandas as pd

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 3.2))
    lines = {"lists served": series.get("lists", {})}
    lines.update({f"feedback: {kind}": v for kind, v in series.get("feedback", {}).items()})
    moments = set()
    for label, points in lines.items():
        if points:
            times = pd.to_datetime(list(points))
            moments.update(times)
            axis.plot(times, list(points.values()), marker="o", markersize=3, label=label)
    if len(moments) == 1:  # one bucket: a narrow axis around it rather than years of nothing
        (only,) = moments
        axis.set_xlim(only - pd.Timedelta(minutes=1), only + pd.Timedelta(minutes=1))
    axis.set_ylabel(f"events per {series.get('bucket') or 'bucket'}")
    axis.legend(fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    data = _figure_data(figure)
    plt.close(figure)
    return data


def plot_click_through(groups: list[Mapping[str, Any]]) -> str | None:
    """Click-through rate by position, one bar group per task and model version."""
    rows = [g for g in groups if g["outcomes"]["impressions"]]
    if not rows:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / len(rows)
    for index, group in enumerate(rows):
        positions = [row["position"] for row in group["outcomes"]["by_position"]]
        rates = [row["click_through_rate"] or 0.0 for row in group["outcomes"]["by_position"]]
        axis.bar(
            [p + index * width for p in positions],
            rates,
            width=width,
            label=f"{group['task']} v{group['model_version']}",
        )
    axis.set_xlabel("position in the list")
    axis.set_ylabel("click-through rate")
    axis.legend(fontsize=8)
    figure.tight_layout()
    data = _figure_data(figure)
    plt.close(figure)
    return data


def plot_lorenz(groups: list[Mapping[str, Any]]) -> str | None:
    """Cumulative share of exposure against the cumulative share of items, least shown first."""
    if not groups:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.8, 4.2))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="equal exposure")
    for group in groups:
        health = group["output_health"]
        axis.plot(
            health["lorenz"]["items"],
            health["lorenz"]["exposure"],
            label=f"{group['task']} v{group['model_version']} (Gini {health['exposure_gini']:.2f})",
        )
    axis.set_xlabel("share of catalogue items")
    axis.set_ylabel("share of exposure")
    axis.legend(fontsize=7)
    figure.tight_layout()
    data = _figure_data(figure)
    plt.close(figure)
    return data


def plot_drift(group: Mapping[str, Any]) -> str | None:
    """History length and input popularity: the reference against the window."""
    histograms = group.get("drift", {}).get("histograms")
    if not histograms:
        return None
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    lengths = histograms["history_length"]
    top = max([*lengths["reference"], *lengths["current"], 1])
    bins = min(top, 40)
    left.hist(
        lengths["reference"], bins=bins, range=(0, top), density=True, alpha=0.5, label="training"
    )
    left.hist(
        lengths["current"], bins=bins, range=(0, top), density=True, alpha=0.5, label="window"
    )
    left.set_xlabel("history length (inputs per request)")
    left.legend(fontsize=8)
    shares = histograms["input_popularity"]
    n = len(shares["reference"])
    centres = [(i + 0.5) / n for i in range(n)]
    right.bar([c - 0.02 for c in centres], shares["reference"], width=0.04, label="training")
    right.bar([c + 0.02 for c in centres], shares["current"], width=0.04, label="window")
    right.set_xlabel("popularity percentile of input items")
    right.legend(fontsize=8)
    figure.suptitle(f"{group['task']} v{group['model_version']}: input drift", fontsize=10)
    figure.tight_layout()
    data = _figure_data(figure)
    plt.close(figure)
    return data


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) or "–"
    return str(value)


def _table(values: Mapping[str, Any], skip: tuple[str, ...] = ()) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_format(v))}</td></tr>"
        for k, v in values.items()
        if k not in skip
    )
    return f"<table>{rows}</table>"


def _image(data: str | None, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">' if data else ""


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page for one report."""
    window = report["window"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Segue monitoring report {html.escape(window['since'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Segue monitoring report</h1>",
        f"<p>Window {html.escape(window['since'])} to {html.escape(window['until'])}; "
        f"cut-off k = {report['k']}; generated {html.escape(report['generated_at'])}.</p>",
        _table(report["totals"]),
    ]
    if report.get("empty"):
        parts.append(f"<p><strong>{html.escape(report['message'])}</strong></p>")
    alerts = report.get("alerts", [])
    if alerts:
        parts.append("<h2 class='alert'>Alerts</h2><ul>")
        parts += [
            f"<li class='alert'>{html.escape(a.get('task', ''))} v{html.escape(a.get('model_version', ''))}"
            f" {html.escape(a['check'])}: {html.escape(a['message'])}</li>"
            for a in alerts
        ]
        parts.append("</ul>")
    elif not report.get("empty"):
        parts.append("<p class='ok'>No alert: every guardrail is 0 and no drift check fired.</p>")
    if report.get("skipped_files"):
        parts.append("<h2>Skipped event-log files</h2><ul>")
        parts += [
            f"<li>{html.escape(s['path'])}: {html.escape(s['reason'])}</li>"
            for s in report["skipped_files"]
        ]
        parts.append("</ul>")
    groups = report.get("groups", [])
    parts.append(_image(plot_series(report), "lists served and feedback over time"))
    parts.append(_image(plot_click_through(groups), "click-through by position"))
    parts.append(_image(plot_lorenz(groups), "exposure concentration curve"))
    for group in groups:
        parts.append(
            f"<h2>{html.escape(group['task'])}: {html.escape(group['model_name'])} version "
            f"{html.escape(group['model_version'])} ({html.escape(group['algorithm'])})</h2>"
        )
        parts.append("<h3>Service</h3>" + _table(group["service"]))
        parts.append("<h3>Online outcomes</h3>" + _table(group["outcomes"], skip=("by_position",)))
        parts.append("<h3>Guardrails</h3>" + _table(group["guardrails"]))
        parts.append("<h3>Output health</h3>" + _table(group["output_health"], skip=("lorenz",)))
        drift = group.get("drift", {})
        rows = {
            name: result["message"]
            for name, result in drift.items()
            if isinstance(result, dict) and "message" in result
        }
        parts.append(
            "<h3>Input drift</h3>"
            + (_table(rows) if rows else html.escape(drift.get("message", "")))
        )
        parts.append(_image(plot_drift(group), "drift histograms"))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(report: Mapping[str, Any], directory: Path) -> Path:
    path = directory / HTML_FILE
    path.write_text(render_html(report), encoding="utf-8")
    return path
