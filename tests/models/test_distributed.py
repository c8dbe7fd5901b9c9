"""Distributed training: each rank's share of a batch, and real torchrun runs of two gloo ranks.

The torchrun tests start ``distributed_worker.py`` with ``python -m torch.distributed.run`` (the
launcher itself, nothing simulated) on tiny data with one torch thread per rank.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segue.data.interactions import Holdout
from segue.models.base import create_model, load_model
from segue.models.distributed import (
    SINGLE_PROCESS,
    DistributedTrainingError,
    TrainingWorld,
    holdout_share,
    launched_world,
    mean_across_ranks,
    rank_batches,
    training_in,
)

torch = pytest.importorskip("torch")

WORKER = Path(__file__).with_name("distributed_worker.py")
# Largest parameter difference allowed between 2 ranks x batch 4 and one process x batch 8,
# after 3 epochs of Adam: float32 sums in a different order, nothing more.
SAME_GLOBAL_BATCH_TOLERANCE = 1e-5


def torchrun(mode: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        str(WORKER),
        mode,
        str(out),
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, cwd=out, check=False
    )


# -- a rank's share, without a process group ---------------------------------------------------


def shares(order: np.ndarray, batch_size: int, world_size: int) -> list[list[np.ndarray]]:
    """Per step, every rank's rows."""
    per_rank = []
    for rank in range(world_size):
        with training_in(TrainingWorld(rank, world_size)):
            per_rank.append(list(rank_batches(order, batch_size)))
    return [list(step) for step in zip(*per_rank, strict=True)]


def test_the_ranks_of_a_step_hold_the_one_process_batch_of_batch_size_times_world_size() -> None:
    order = np.random.default_rng(0).permutation(16)
    one_process = list(rank_batches(order, 8))
    for step, ranks in zip(one_process, shares(order, 4, 2), strict=True):
        assert all(len(rows) == 4 for rows in ranks)
        assert sorted(np.concatenate(ranks).tolist()) == sorted(step.tolist())


def test_an_uneven_last_batch_is_padded_with_its_own_first_rows() -> None:
    order = np.arange(11)
    steps = shares(order, 2, 3)  # global batches of 6: rows 0-5, then 6-10 padded with 6
    assert [len(rows) for rows in steps[-1]] == [2, 2, 2]
    last = np.concatenate(steps[-1]).tolist()
    assert sorted(last) == [6, 6, 7, 8, 9, 10]


def test_a_last_batch_smaller_than_the_world_still_gives_every_rank_a_row() -> None:
    steps = shares(np.arange(9), 2, 4)  # a global batch of 8 rows, then one row for 4 ranks
    assert [rows.tolist() for rows in steps[-1]] == [[8], [8], [8], [8]]


def test_one_process_takes_every_row_in_order() -> None:
    order = np.array([3, 1, 2, 0, 4])
    assert [rows.tolist() for rows in rank_batches(order, 2)] == [[3, 1], [2, 0], [4]]


def test_validation_cases_are_shared_out_and_kept_whole_when_too_few() -> None:
    holdout = Holdout([np.array([i]) for i in range(5)], [np.array([i + 1]) for i in range(5)])
    with training_in(TrainingWorld(1, 2)):
        share = holdout_share(holdout)
    assert [h.tolist() for h in share.histories] == [[1], [3]]
    with training_in(TrainingWorld(1, 8)):
        assert len(holdout_share(holdout)) == 5
    assert holdout_share(holdout) is holdout


def test_one_process_reduces_nothing() -> None:
    assert mean_across_ranks({"ndcg_at_10": 0.5}, weight=3) == {"ndcg_at_10": 0.5}


def test_the_launcher_environment_names_the_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_world() == SINGLE_PROCESS
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    world = launched_world()
    assert (world.rank, world.world_size, world.is_primary) == (1, 2, False)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(DistributedTrainingError, match="RANK=2 is outside WORLD_SIZE=2"):
        launched_world()


# -- two real ranks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_rank_fit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("two-ranks")
    finished = torchrun("fit", out)
    assert finished.returncode == 0, finished.stderr[-4000:]
    return out


def rank_records(out: Path, name: str) -> list[dict]:
    return [json.loads((out / f"{name}.rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "autoencoder", "sasrec", "gru4rec", "mult-vae"])
def test_every_rank_holds_the_same_parameters_after_every_epoch(
    two_rank_fit: Path, name: str
) -> None:
    first, second = rank_records(two_rank_fit, name)
    assert first["epochs"], "the trainer validated (and checksummed) every epoch"
    assert first["epochs"] == second["epochs"]
    assert first["final"] == second["final"]
    # The same reduced loss and metrics, so the same early-stopping epoch on both ranks.
    assert first["history"] == second["history"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "autoencoder"])
def test_two_ranks_equal_one_process_with_the_same_global_batch(
    two_rank_fit: Path, name: str
) -> None:
    from distributed_worker import MODELS, PER_RANK_BATCH, SCHEDULE, TRAIN, VALIDATION

    config = {**MODELS[name], **SCHEDULE, "batch_size": 2 * PER_RANK_BATCH}
    alone = create_model(name, config, seed=5).fit(TRAIN, VALIDATION)
    together = load_model(two_rank_fit / name)
    state_alone, state_together = alone._state(), together._state()
    assert state_alone.keys() == state_together.keys()
    largest = max(np.abs(state_alone[k] - state_together[k]).max() for k in state_alone)
    assert largest < SAME_GLOBAL_BATCH_TOLERANCE
    assert len(alone.training_history) == len(together.training_history)
    for one, two in zip(alone.training_history, together.training_history, strict=True):
        assert two["val_ndcg_at_10"] == pytest.approx(one["val_ndcg_at_10"], abs=1e-9)
        assert two["loss"] == pytest.approx(one["loss"], abs=1e-5)


@pytest.mark.slow
def test_a_crash_on_one_rank_ends_the_job_with_an_error_naming_that_rank(tmp_path: Path) -> None:
    finished = torchrun("crash", tmp_path)  # a hang would hit the subprocess timeout
    assert finished.returncode != 0
    output = finished.stdout + finished.stderr
    assert "injected failure: rank 1 cannot read its batch" in output
    assert "raised on rank 1 of 2" in output
    assert "rank 1 of 2 failed" in output
    # torchrun's own summary: the first failure is rank 1's, the other rank was stopped.
    assert re.search(r"Root Cause.*?rank\s*:\s*1 \(local_rank: 1\)", output, re.DOTALL)
