"""Peak resident memory of a block of code, for training runs and benchmarks."""

from __future__ import annotations

import threading

import psutil


class PeakMemory:
    """Peak resident memory above the starting point, sampled by a background thread.

    Resident memory (psutil RSS) counts every allocator: NumPy, PyTorch, implicit's native code.
    Sampling every 10 ms can miss a spike shorter than that, and memory the process already held
    (freed by an earlier model and reused) does not count again.
    """

    def __init__(self, interval_seconds: float = 0.01) -> None:
        self.interval_seconds = interval_seconds
        self.peak_mb = 0.0
        self._process = psutil.Process()
        self._baseline = 0
        self._highest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="segue-peak-memory", daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._highest = max(self._highest, self._process.memory_info().rss)
            self._stop.wait(self.interval_seconds)

    def __enter__(self) -> PeakMemory:
        self._baseline = self._highest = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        highest = max(self._highest, self._process.memory_info().rss)
        self.peak_mb = max(highest - self._baseline, 0) / 2**20
