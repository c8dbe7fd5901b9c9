"""Leaderboards and learning curves: the files people read are written, ordered and labelled."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segue.evaluation.report import (
    Leaderboard,
    LeaderboardRow,
    plot_learning_curve,
    write_leaderboard,
)


def _board() -> Leaderboard:
    return Leaderboard(
        "test board",
        [
            LeaderboardRow("most-popular", {"ndcg_at_10": 0.1, "recall_at_10": 0.2}, 0.01, 1.0),
            LeaderboardRow("ease", {"ndcg_at_10": 0.3, "recall_at_10": 0.4}, 0.5, 12.0, "r1"),
            LeaderboardRow("autoencoder", {"ndcg_at_10": 0.6}, 2.0, 30.0, "r2", leaky=True),
        ],
        notes=["a note"],
    )


def test_leaderboard_files_are_written_best_first(tmp_path: Path) -> None:
    files = write_leaderboard(_board(), tmp_path / "out")
    frame = pd.read_csv(files.csv)
    assert frame["model"].tolist() == ["autoencoder (leaky)", "ease", "most-popular"]
    assert frame["rank"].tolist() == [1, 2, 3]
    assert list(frame.columns) == [
        "rank",
        "model",
        "ndcg_at_10",
        "recall_at_10",
        "fit_seconds",
        "peak_memory_mb",
        "run_id",
    ]
    markdown = files.markdown.read_text(encoding="utf-8")
    assert "# test board" in markdown
    assert "| 2 | ease | 0.3000 | 0.4000 | 0.50 | 12.0 |" in markdown
    assert "| 1 | autoencoder (leaky) | 0.6000 | n/a |" in markdown
    assert "- a note" in markdown and "peak_memory_mb:" in markdown
    assert files.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_playlist_boards_chart_the_last_position_twin(tmp_path: Path) -> None:
    board = Leaderboard(
        "playlists",
        [LeaderboardRow("markov", {"ndcg_at_10": 0.4, "last_ndcg_at_10": 0.3}, 0.1, 1.0)],
    )
    files = write_leaderboard(board, tmp_path)
    assert "last_ndcg_at_10" in pd.read_csv(files.csv).columns
    assert files.png.stat().st_size > 0


def test_learning_curve_png(tmp_path: Path) -> None:
    history = [
        {"epoch": 1.0, "loss": 2.0, "val_ndcg_at_10": 0.1},
        {"epoch": 2.0, "loss": 1.5, "val_ndcg_at_10": 0.2},
    ]
    path = plot_learning_curve(history, tmp_path / "curve.png", "autoencoder")
    assert path.read_bytes()[:4] == b"\x89PNG"
