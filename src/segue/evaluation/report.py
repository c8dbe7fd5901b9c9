"""Reports people read: leaderboards (Markdown, CSV, a PNG bar chart) and learning curves (PNG).

Plots use matplotlib's Agg backend, imported only when a plot is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from segue.evaluation.metrics import higher_is_better

LEADERBOARD_STEM = "leaderboard"
LEAKY_LABEL = "(leaky)"
MEMORY_NOTE = (
    "peak_memory_mb: the highest resident memory of the process while the model was fitted, "
    "minus the resident memory just before; sampled every 10 ms, it counts NumPy, PyTorch and "
    "native libraries alike, and reads 0 when the model fits inside memory the process already held."
)


@dataclass(frozen=True)
class LeaderboardRow:
    """One model's figures on one split."""

    model: str
    metrics: dict[str, float]
    fit_seconds: float
    peak_memory_mb: float
    run_id: str | None = None
    leaky: bool = False

    @property
    def label(self) -> str:
        return f"{self.model} {LEAKY_LABEL}" if self.leaky else self.model


@dataclass(frozen=True)
class Leaderboard:
    """Rows sorted best first on ``headline``, with the columns to show."""

    title: str
    rows: list[LeaderboardRow]
    headline: str = "ndcg_at_10"
    metric_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def sorted_rows(self) -> list[LeaderboardRow]:
        sign = -1.0 if higher_is_better(self.headline) else 1.0

        def key(row: LeaderboardRow) -> float:
            value = row.metrics.get(self.headline, math.nan)
            return math.inf if math.isnan(value) else sign * value

        return sorted(self.rows, key=key)

    def columns(self) -> list[str]:
        if self.metric_columns:
            return list(self.metric_columns)
        present = {key for row in self.rows for key in row.metrics}
        return default_metric_columns(present, self.headline)

    def to_frame(self) -> pd.DataFrame:
        records = []
        for rank, row in enumerate(self.sorted_rows(), start=1):
            record: dict[str, object] = {"rank": rank, "model": row.label}
            record.update({key: row.metrics.get(key, math.nan) for key in self.columns()})
            record["fit_seconds"] = row.fit_seconds
            record["peak_memory_mb"] = row.peak_memory_mb
            record["run_id"] = row.run_id or ""
            records.append(record)
        return pd.DataFrame.from_records(records)


def default_metric_columns(present: set[str], headline: str = "ndcg_at_10") -> list[str]:
    """The headline's cut-off for every metric family that was measured, in a fixed order."""
    k = headline.rsplit("_at_", 1)[-1]
    families = (
        "ndcg",
        "last_ndcg",
        "recall",
        "last_recall",
        "hit_rate",
        "last_hit_rate",
        "mrr",
        "last_mrr",
        "precision",
        "coverage",
        "popularity_percentile",
    )
    return [f"{name}_at_{k}" for name in families if f"{name}_at_{k}" in present]


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; floats with four decimals, seconds with two."""

    def cell(column: str, value: object) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "n/a"
            if column in {"fit_seconds", "peak_memory_mb"}:
                return f"{value:.1f}" if column == "peak_memory_mb" else f"{value:.2f}"
            return f"{value:.4f}"
        return str(value)

    columns = [c for c in frame.columns if c != "run_id"]
    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    for _, record in frame.iterrows():
        lines.append("| " + " | ".join(cell(c, record[c]) for c in columns) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class LeaderboardFiles:
    markdown: Path
    csv: Path
    png: Path


def write_leaderboard(
    leaderboard: Leaderboard, directory: str | Path, stem: str = LEADERBOARD_STEM
) -> LeaderboardFiles:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.png`` into ``directory``."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    frame = leaderboard.to_frame()
    files = LeaderboardFiles(root / f"{stem}.md", root / f"{stem}.csv", root / f"{stem}.png")
    frame.to_csv(files.csv, index=False)
    notes = "".join(f"\n- {note}" for note in [*leaderboard.notes, MEMORY_NOTE])
    files.markdown.write_text(
        f"# {leaderboard.title}\n\n{markdown_table(frame)}\n{notes}\n", encoding="utf-8"
    )
    plot_leaderboard(leaderboard, files.png)
    return files


def plot_leaderboard(leaderboard: Leaderboard, path: Path) -> Path:
    """Horizontal bars of the headline metric (and its last-position twin when measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(reversed(leaderboard.sorted_rows()))  # best at the top of the chart
    keys = [leaderboard.headline]
    twin = f"last_{leaderboard.headline}"
    if any(twin in row.metrics for row in rows):
        keys.append(twin)
    height = 0.8 / len(keys)
    figure, axis = plt.subplots(figsize=(7, 1.2 + 0.45 * max(len(rows), 1) * len(keys)))
    for offset, key in enumerate(keys):
        positions = [i + offset * height for i in range(len(rows))]
        values = [row.metrics.get(key, 0.0) for row in rows]
        bars = axis.barh(positions, values, height=height, label=key)
        for bar, row in zip(bars, rows, strict=True):
            if row.leaky:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
    axis.set_yticks([i + height * (len(keys) - 1) / 2 for i in range(len(rows))])
    axis.set_yticklabels([row.label for row in rows])
    axis.set_xlabel(", ".join(keys))
    axis.set_title(leaderboard.title, fontsize=10)
    if len(keys) > 1:
        axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_learning_curve(history: Sequence[dict[str, float]], path: str | Path, title: str) -> Path:
    """Training loss and validation metrics per epoch, loss on the left axis, metrics on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(path)
    epochs = [record.get("epoch", index + 1) for index, record in enumerate(history)]
    figure, loss_axis = plt.subplots(figsize=(6, 3.5))
    if any("loss" in record for record in history):
        loss_axis.plot(epochs, [r.get("loss", math.nan) for r in history], "o-", color="tab:red")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("training loss", color="tab:red")
    metric_axis = loss_axis.twinx()
    metric_keys = sorted({k for record in history for k in record if k.startswith("val_")})
    for key in metric_keys:
        metric_axis.plot(epochs, [r.get(key, math.nan) for r in history], "s--", label=key)
    if metric_keys:
        metric_axis.set_ylabel("validation metric")
        metric_axis.legend(loc="lower right", fontsize=8)
    loss_axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)
    return target
