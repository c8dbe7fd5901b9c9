"""The peak memory meter of training runs and benchmarks."""

from __future__ import annotations

import numpy as np

from segue.jobs.memory import PeakMemory


def test_peak_memory_counts_numpy_allocations() -> None:
    with PeakMemory() as meter:
        block = np.ones((2000, 8000))  # 122 MiB, written so every page is resident
    assert block.sum() > 0
    assert 100 < meter.peak_mb < 1000
