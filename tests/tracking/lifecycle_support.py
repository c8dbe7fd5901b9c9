"""Helpers of the lifecycle tests that start real server processes (imported by test modules)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from segue.data.dataset import Dataset, write_dataset


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(url: str, process: subprocess.Popen, log: Path, tries: int = 240) -> None:
    """Poll ``url`` until it answers 200; fail with the end of ``log`` if the process exits first.

    Each try waits on the process for up to half a second, so a server that dies is noticed at
    once and a healthy one is used as soon as it answers.
    """
    for _ in range(tries):
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
        output = log.read_text(errors="replace") if log.exists() else ""
        pytest.fail(f"{process.args[:3]} exited with {process.returncode}: {output[-3000:]}")
    pytest.fail(f"{url} did not answer after {tries} tries")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it forked."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def chain_dataset(directory: Path, n_items: int = 12, n_playlists: int = 60) -> Dataset:
    """Playlists walking a cycle: the next song is the one after the last (markov learns it)."""
    items = pd.DataFrame(
        {
            "item": np.arange(n_items),
            "key": [f"artist {i % 4} - song {i}" for i in range(n_items)],
            "artist": [f"Artist {i % 4}" for i in range(n_items)],
            "title": [f"Song {i}" for i in range(n_items)],
            "count": np.zeros(n_items, dtype=np.int64),
        }
    )
    rows = [
        (f"p{playlist}", (playlist + step) % n_items, step)
        for playlist in range(n_playlists)
        for step in range(8)
    ]
    interactions = pd.DataFrame(rows, columns=["sequence", "item", "position"])
    interactions["timestamp"] = pd.array([None] * len(rows), dtype="Int64")
    interactions["rating"] = np.nan
    return write_dataset(directory, "playlists", items, interactions, {})
