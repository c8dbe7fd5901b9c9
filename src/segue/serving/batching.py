"""Scoring off the event loop, in batches: the lists of requests that arrive together are scored
by one model call in a worker thread and handed back with one event-loop wake-up.

Why batches: with the GIL, a thread hop per request (wake a worker, hand back the answer) costs
about as much as scoring a request, and two threads trading the GIL for every request slow the
event loop too. A worker that takes every request waiting makes both costs shrink with load,
while the event loop scores nothing that could take long, so one slow request cannot stall the
others' I/O (lists cheaper than the hop itself are answered on the loop:
``RequestContext.recommend``).

A batch is answered in slices: its requests are prepared (matched) one after another, and once
preparing has taken ``PREPARE_SLICE_SECONDS`` the ones prepared so far are scored and answered
before the next is prepared. Requests of 50 free-text songs at 200k songs take milliseconds each
to match; answered only when the whole batch was matched, each would wait for all the others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from segue.serving.recommender import ListRequest, Recommendation, ServingModel

logger = logging.getLogger(__name__)

# The most requests one model call scores: bounds the latency a batch adds to its first request.
MAX_BATCH = 64
# Preparing the requests of a batch for longer than this answers those prepared so far first.
PREPARE_SLICE_SECONDS = 0.002
# A batch that answers nothing for this long (a stuck model call, a request at its matching
# budget) lets another worker thread serve the requests queued behind it. A long batch that
# answers a slice at a time is not stalled: a second thread beside it would only trade the GIL.
STALL_SECONDS = 0.05


@dataclass(frozen=True)
class _Job:
    model: ServingModel
    prepare: Callable[[], ListRequest]
    future: asyncio.Future[Recommendation]
    loop: asyncio.AbstractEventLoop


class ScoringQueue:
    """Worker threads that turn queued requests into lists, a batch at a time.

    One worker runs at a time while batches are quick: CPU-bound threads under the GIL only slow
    each other. A second one starts beside a batch that has answered nothing for
    ``STALL_SECONDS``.

    ``prepare`` (matching songs or keys to items) runs in the worker too, so the event loop
    only parses and formats. Each job keeps the model it was queued with: a hot reload
    mid-batch cannot change the model a request is answered by.
    """

    def __init__(
        self,
        name: str,
        threads: int = 1,
        max_batch: int = MAX_BATCH,
        prepare_slice_seconds: float = PREPARE_SLICE_SECONDS,
    ) -> None:
        if threads < 1 or max_batch < 1:
            raise ValueError("a scoring queue needs at least one thread and a batch of one")
        self.name = name
        self.max_batch = max_batch
        self.prepare_slice_seconds = prepare_slice_seconds
        self._turns = _Turns(STALL_SECONDS)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-scoring-{n}", daemon=True)
            for n in range(threads)
        ]
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Let the workers finish the jobs already queued, then end them."""
        if not self._started:
            return
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
        self._started = False

    async def recommend(
        self, model: ServingModel, prepare: Callable[[], ListRequest]
    ) -> Recommendation:
        """The list for the request ``prepare`` builds, scored by ``model`` in a worker."""
        if not self._started:
            raise RuntimeError(f"the {self.name} scoring queue is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recommendation] = loop.create_future()
        self._jobs.put(_Job(model, prepare, future, loop))
        return await future

    def _work(self) -> None:
        while True:
            # Wait for the other workers' batches (they would only trade the GIL with this one)
            # unless one has answered nothing for STALL_SECONDS: then this one runs beside it.
            # The turn comes before the request: a waiting thread holds none, so the requests
            # that arrive while a batch runs are all in the next batch, in the order they came.
            self._turns.enter()
            try:
                while True:
                    first = self._jobs.get()
                    if first is None or not self._serve_with(first):
                        return
                    if not self._turns.keep():  # another thread runs beside: wait again
                        break
            finally:
                self._turns.leave()

    def _serve_with(self, first: _Job) -> bool:
        """Serve ``first`` and the jobs waiting behind it; False when a stop came with them."""
        self._turns.progress()  # a batch begins: from now on it can stall
        jobs = [first]
        while len(jobs) < self.max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:  # stop: serve what was taken, then end this worker
                self._serve(jobs)
                return False
            jobs.append(job)
        self._serve(jobs)
        return True

    def _serve(self, jobs: list[_Job]) -> None:
        """Prepare the batch's requests in order, scoring and answering them a slice at a time."""
        outcomes: list[tuple[_Job, Recommendation | BaseException]] = []
        by_model: dict[int, list[tuple[_Job, ListRequest]]] = {}
        slice_ends = time.perf_counter() + self.prepare_slice_seconds
        for job in jobs:
            if job.future.cancelled():  # the client went away while it waited
                continue
            try:
                by_model.setdefault(id(job.model), []).append((job, job.prepare()))
            except Exception as error:  # one bad request must not fail its batch
                outcomes.append((job, error))
            if time.perf_counter() >= slice_ends:
                self._deliver(outcomes + self._score(by_model))
                self._turns.progress()
                outcomes, by_model = [], {}
                slice_ends = time.perf_counter() + self.prepare_slice_seconds
        if outcomes or by_model:
            self._deliver(outcomes + self._score(by_model))

    def _score(
        self, by_model: dict[int, list[tuple[_Job, ListRequest]]]
    ) -> list[tuple[_Job, Recommendation | BaseException]]:
        """One model call for each model's prepared requests."""
        outcomes: list[tuple[_Job, Recommendation | BaseException]] = []
        for prepared in by_model.values():
            model = prepared[0][0].model
            try:
                lists = model.recommend_many([request for _, request in prepared])
            except Exception as error:
                logger.exception("scoring a batch of %d on %s failed", len(prepared), self.name)
                outcomes.extend((job, error) for job, _ in prepared)
            else:
                outcomes.extend(zip((job for job, _ in prepared), lists, strict=True))
        return outcomes

    @staticmethod
    def _deliver(outcomes: list[tuple[_Job, Recommendation | BaseException]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for job, outcome in outcomes:
            by_loop.setdefault(job.loop, []).append((job.future, outcome))
        for loop, settled in by_loop.items():
            # RuntimeError: that event loop has closed, so nobody waits for these answers.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, settled)


class _Turns:
    """Worker threads run their batches one at a time, except that a thread waiting for a batch
    that has answered nothing for ``stall_seconds`` runs beside it.

    The thread that finished a batch keeps the turn for the next one while none runs beside it:
    the threads are interchangeable, and handing the turn to a waiting one would cost a thread
    switch per batch. A thread with the turn and no request yet (waiting for one) is not
    stalled. Threads that wait get the turn in the order they asked.
    """

    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self._lock = threading.Lock()
        self._waiting: collections.deque[threading.Event] = collections.deque()
        self._running = 0
        # When the batch that has the turn began or last answered; None while it has no request.
        self._started: float | None = None

    def enter(self) -> None:
        with self._lock:
            if self._running == 0 and not self._waiting:
                self._running, self._started = 1, None
                return
            mine = threading.Event()
            self._waiting.append(mine)
        while True:
            started = self._started
            left = self.stall_seconds
            if started is not None:
                left += started - time.perf_counter()
            if mine.wait(timeout=max(left, 0.0)):
                return  # handed the turn by ``leave``
            with self._lock:
                if mine.is_set():
                    return
                if self.stalled():
                    self._waiting.remove(mine)
                    self._running, self._started = self._running + 1, None
                    return

    def stalled(self) -> bool:
        """Whether the batch with the turn has answered nothing for ``stall_seconds``."""
        started = self._started
        return started is not None and time.perf_counter() - started >= self.stall_seconds

    def progress(self) -> None:
        """The thread with the turn began a batch or answered a slice: it is not stalled,
        whatever the batch's age."""
        with self._lock:
            self._started = time.perf_counter()

    def keep(self) -> bool:
        """After a batch: True when this thread keeps the turn (none runs beside it), now
        waiting for a request; False when another does, and this one must ``leave``."""
        with self._lock:
            if self._running > 1:
                return False
            self._started = None
            return True

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0:
                self._started = None
                if self._waiting:
                    self._running = 1
                    self._waiting.popleft().set()


def _settle(settled: list[tuple[asyncio.Future, Recommendation | BaseException]]) -> None:
    for future, outcome in settled:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
