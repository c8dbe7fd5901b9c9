"""Simulated traffic: held-out sessions replayed against a running Segue server, as users would.

For ``next-song`` every held-out playlist is one session: each prefix is sent to
``POST /v1/next-songs``, the list shown is reported as impressions, and a click is reported when
the song that really came next is in the list. For ``user-items`` every held-out user sends their
history to ``POST /v1/users/recommendations`` (a click when a held-out item is in the list) and
asks ``GET /v1/users/{user_id}/recommendations`` once. Sessions are the protocol's test cases of
the task (the same split as training), so the model never trained on them.

``drift`` shifts the traffic the way a changed audience would: every input is swapped for a
long-tail song (the least popular tenth of the catalogue), two songs the catalogue does not know
are added, and user lists ask for users the model never saw, so the drift checks of
``segue monitor check`` fire.

The run is bounded by a number of sessions and by wall time, and only talks to a loopback
address: it is a demo and test tool, not a load generator for other people's servers.
"""

from __future__ import annotations

import ipaddress
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import numpy as np
from tqdm import tqdm

from segue.data.dataset import Dataset
from segue.data.interactions import Holdout
from segue.evaluation.protocols import build_split, default_protocol
from segue.jobs.monitor import fresh_dataset
from segue.settings import Settings

LONG_TAIL_SHARE = 0.1
UNKNOWN_SONGS_PER_REQUEST = 2
REQUEST_TIMEOUT_SECONDS = 10.0


class SimulationError(ValueError):
    """The simulation cannot run: a non-loopback URL, an unreachable server, unusable data."""


@dataclass
class SimulationSummary:
    """What one simulation sent and saw."""

    task: str
    drift: bool
    sessions: int = 0
    lists: int = 0
    impressions: int = 0
    clicks: int = 0
    feedback_events: int = 0
    errors: int = 0
    seconds: float = 0.0
    stopped_by: str = "done"

    @property
    def click_through_rate(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None


def loopback_url(url: str) -> str:
    """``url`` without a trailing slash, when its host is a loopback address; else an error."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SimulationError(f"--url {url!r}: expected http://127.0.0.1:PORT")
    host = parts.hostname
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise SimulationError(
            f"--url {url!r}: simulated traffic only goes to a loopback address "
            "(127.0.0.1, ::1 or localhost)"
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class _Session:
    sequence_id: str
    histories: list[np.ndarray]
    targets: list[np.ndarray]


def held_out_sessions(holdout: Holdout) -> Iterator[_Session]:
    """The test cases grouped by sequence (cases of one sequence are consecutive)."""
    ids = holdout.sequence_ids or [str(i) for i in range(len(holdout))]
    start = 0
    for index in range(1, len(holdout) + 1):
        if index == len(holdout) or ids[index] != ids[start]:
            yield _Session(ids[start], holdout.histories[start:index], holdout.targets[start:index])
            start = index


class _Traffic:
    """Sends requests and feedback, and counts them into the summary."""

    def __init__(self, client: httpx.Client, summary: SimulationSummary, k: int) -> None:
        self.client = client
        self.summary = summary
        self.k = k

    def ask(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict | None:
        try:
            if method == "GET":
                response = self.client.get(path, params={"k": self.k})
            else:
                response = self.client.post(path, json={**(body or {}), "k": self.k})
        except httpx.TransportError as error:
            if self.summary.lists == 0 and self.summary.errors == 0:
                raise SimulationError(f"cannot reach the server: {error}") from error
            self.summary.errors += 1
            return None
        if response.status_code != 200:
            self.summary.errors += 1
            return None
        self.summary.lists += 1
        return response.json()

    def react(self, answer: dict, wanted: set[str]) -> None:
        """Impressions for the whole list, and a click on the first wanted item in it."""
        rid = answer["recommendation_id"]
        keys = [item["key"] for item in answer["items"]]
        events = [
            {"recommendation_id": rid, "item": key, "type": "impression", "position": position}
            for position, key in enumerate(keys, start=1)
        ]
        hit = next((p for p, key in enumerate(keys, start=1) if key in wanted), None)
        if hit is not None:
            events.append(
                {"recommendation_id": rid, "item": keys[hit - 1], "type": "click", "position": hit}
            )
            self.summary.clicks += 1
        self.summary.impressions += len(keys)
        if not events:
            return
        try:
            response = self.client.post("/v1/feedback", json={"events": events})
        except httpx.TransportError:
            self.summary.errors += 1
            return
        if response.status_code == 202:
            self.summary.feedback_events += len(events)
        else:
            self.summary.errors += 1


def simulate_traffic(
    settings: Settings,
    task: str,
    data: str | Path,
    url: str,
    *,
    drift: bool = False,
    sessions: int = 50,
    seconds: float = 60.0,
    k: int | None = None,
    progress: bool = True,
) -> SimulationSummary:
    """Replay up to ``sessions`` held-out sessions of ``data`` against the server at ``url``
    (loopback only) for at most ``seconds``."""
    base = loopback_url(url)
    if sessions < 1 or seconds <= 0:
        raise SimulationError("--sessions must be >= 1 and --seconds > 0")
    with tempfile.TemporaryDirectory(prefix="segue-simulate-") as scratch:
        dataset = fresh_dataset(settings, task, Path(data), Path(scratch) / "dataset")
        split = build_split(dataset, default_protocol(task), settings.evaluation)
    keys = dataset.items.sort_values("item", kind="stable")["key"].astype(str).to_numpy(object)
    rng = np.random.default_rng(settings.data.seed)
    shift = _Shift(dataset, keys, rng) if drift else None
    summary = SimulationSummary(task, drift)
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    chosen = list(held_out_sessions(split.test))[:sessions]
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_SECONDS) as client:
        traffic = _Traffic(client, summary, k or settings.serving.default_k)
        for session in tqdm(chosen, desc="sessions", unit="session", disable=not progress):
            if time.monotonic() >= deadline:
                summary.stopped_by = "time"
                break
            if task == "next-song":
                _next_song_session(traffic, session, keys, shift, deadline)
            else:
                _user_session(traffic, session, keys, shift)
            summary.sessions += 1
    summary.seconds = time.monotonic() - started
    return summary


class _Shift:
    """How drifted traffic differs: long-tail inputs, unknown songs, unknown users."""

    def __init__(self, dataset: Dataset, keys: np.ndarray, rng: np.random.Generator) -> None:
        counts = dataset.items.sort_values("item", kind="stable")["count"].to_numpy()
        size = max(5, int(len(keys) * LONG_TAIL_SHARE))
        self.long_tail = keys[np.argsort(counts, kind="stable")[:size]]
        self.rng = rng
        self.unknown = 0

    def inputs(self, history: np.ndarray) -> list[str]:
        swapped = [str(key) for key in self.rng.choice(self.long_tail, size=len(history))]
        return swapped + [self._unknown_song() for _ in range(UNKNOWN_SONGS_PER_REQUEST)]

    def _unknown_song(self) -> str:
        self.unknown += 1
        return f"Nobody Known {self.unknown} - Unheard Song {self.unknown}"

    def user(self) -> str:
        self.unknown += 1
        return f"new-listener-{self.unknown}"


def _next_song_session(
    traffic: _Traffic, session: _Session, keys: np.ndarray, shift: _Shift | None, deadline: float
) -> None:
    for history, target in zip(session.histories, session.targets, strict=True):
        if time.monotonic() >= deadline:
            return
        songs = shift.inputs(history) if shift else [str(keys[i]) for i in history]
        answer = traffic.ask("POST", "/v1/next-songs", {"songs": songs})
        if answer is not None:
            traffic.react(answer, {str(keys[i]) for i in target})


def _user_session(
    traffic: _Traffic, session: _Session, keys: np.ndarray, shift: _Shift | None
) -> None:
    for history, targets in zip(session.histories, session.targets, strict=True):
        wanted = {str(keys[i]) for i in targets}
        inputs = shift.inputs(history) if shift else [str(keys[i]) for i in history]
        answer = traffic.ask("POST", "/v1/users/recommendations", {"history": inputs})
        if answer is not None:
            traffic.react(answer, wanted)
        user = shift.user() if shift else session.sequence_id
        answer = traffic.ask("GET", f"/v1/users/{quote(user, safe='')}/recommendations")
        if answer is not None:
            traffic.react(answer, wanted)
