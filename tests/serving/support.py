"""What the serving tests share: tiny servable packages, an injectable loader, a live server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import uvicorn

from segue.data.interactions import Interactions
from segue.data.song_parser import parse_songs
from segue.models.base import create_model
from segue.serving import HTTP_PROTOCOL
from segue.serving.recommender import ModelVersion
from segue.settings import Settings, load_settings
from segue.tracking.package import ModelPackage, histories_by_id

# Four artists with several songs each; the first string teaches the alias 아이유 = IU.
SONGS = [
    "아이유 (IU) - 밤편지",
    "IU - Palette",
    "IU - Blueming",
    "BTS - Dynamite",
    "BTS - Butter",
    "BTS - Spring Day",
    "JANNABI(잔나비) - 주저하는 연인들을 위해",
    "JANNABI - 뜨거운 여름밤은 가고 남은 건 볼품없지만",
    "Coldplay - Yellow",
    "Coldplay - Fix You",
    "Coldplay - Viva La Vida",
    "Adele - Hello",
    "Adele - Someone Like You",
]
# Playlists walk these groups in order, so co-occurrence links songs of the same mood.
PLAYLIST_GROUPS = [[0, 1, 2, 6, 7], [3, 4, 5, 1, 2], [8, 9, 10, 11, 12]]
SERVER_START_SECONDS = 30.0
PROCESS_START_SECONDS = 90.0
PROCESS_STOP_SECONDS = 60.0


def next_song_package(model: str = "item-knn") -> ModelPackage:
    parsed, aliases = parse_songs(SONGS)
    keys = [song.key for song in parsed]
    playlists = [
        np.array(group[shift:] + group[:shift], dtype=np.int64)
        for group in PLAYLIST_GROUPS
        for shift in range(len(group))
    ]
    train = Interactions(playlists, len(SONGS), [f"p{i}" for i in range(len(playlists))])
    items = pd.DataFrame(
        {
            "item": np.arange(len(SONGS)),
            "key": keys,
            "artist": [song.artist for song in parsed],
            "title": [song.title for song in parsed],
            "count": train.item_counts(),
        }
    )
    scorer = create_model(model).fit(train)
    return ModelPackage("next-song", scorer, items, histories_by_id(train), aliases.to_frame())


def user_items_package(model: str = "item-knn") -> ModelPackage:
    """30 movies and 40 users in two taste groups (even and odd movies)."""
    n_items = 30
    histories = []
    for user in range(40):
        rng = np.random.default_rng(user)
        histories.append(rng.choice(np.arange(user % 2, n_items, 2), size=6, replace=False))
    train = Interactions(histories, n_items, [str(user + 1) for user in range(40)])
    items = pd.DataFrame(
        {
            "item": np.arange(n_items),
            "key": [str(100 + i) for i in range(n_items)],
            "artist": [""] * n_items,
            "title": [f"Movie {i} ({1990 + i})" for i in range(n_items)],
            "count": train.item_counts(),
        }
    )
    scorer = create_model(model).fit(train)
    return ModelPackage("user-items", scorer, items, histories_by_id(train))


def settings_with(*overrides: str) -> Settings:
    return load_settings("dev", ["serving.reload_interval_seconds=0", *overrides])


class PackageLoader:
    """An injectable champion loader: serves whatever packages and version the test releases."""

    def __init__(self, packages: dict[str, ModelPackage], version: str = "1") -> None:
        self.current = (version, dict(packages))
        self.failure: Exception | None = None

    def release(self, version: str, packages: dict[str, ModelPackage]) -> None:
        """Move the champion: one assignment, so a poll sees the old pair or the new one."""
        self.current = (version, dict(packages))

    def __call__(self, task: str) -> tuple[ModelVersion, ModelPackage]:
        if self.failure is not None:
            raise self.failure
        version, packages = self.current
        if task not in packages:
            raise LookupError(f"no champion registered for {task}")
        return ModelVersion(f"dev.segue-{task}", version), packages[task]


class LiveServer:
    """A uvicorn server on a free loopback port, run in a thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="on",
            http=HTTP_PROTOCOL,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        while httpx.get(f"{url}/healthz", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("/healthz never answered 200")
            time.sleep(0.01)
        return url

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def publish_champions(settings: Settings) -> dict[str, str]:
    """Register the tiny packages of both tasks and make them champions; task -> version."""
    from segue.tracking.registry import CHAMPION, open_registry

    registry = open_registry(settings)
    versions = {}
    for package in (next_song_package(), user_items_package()):
        version = registry.publish(package)
        registry.set_alias(version.name, CHAMPION, version.version)
        versions[package.task] = version.version
    return versions


class SegueProcess:
    """`segue serve` as a person runs it: a process on a free loopback port, stopped by its PID."""

    def __init__(
        self,
        settings: list[str],
        *,
        workers: int = 1,
        cwd: Path | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(environment or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        segue = Path(sys.executable).with_name("segue")
        self.command = [
            str(segue),
            *[f"--set={value}" for value in ["serving.reload_interval_seconds=0", *settings]],
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        self.cwd = cwd or Path.cwd()
        self.log = self.cwd / f"segue-serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> SegueProcess:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            env=self.environment,
        )
        deadline = time.monotonic() + PROCESS_START_SECONDS
        while True:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"segue serve was not ready: {self.output()}"
            time.sleep(0.1)

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        """Send ``signal_number`` and wait for the exit; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
            try:
                self.process.wait(timeout=PROCESS_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"segue serve ignored the signal: {self.output()}") from None
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def __enter__(self) -> SegueProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
