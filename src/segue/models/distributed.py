"""What the shared trainer needs to run as one rank of many: which rank this process is, the
process group, this rank's share of every batch, and the few collective calls that keep ranks
in step.

A process learns that it is one of several from the launcher's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``), which both engines set:

- torchrun (``torchrun --standalone --nproc_per_node=N -m segue train ...``, or
  ``segue train --nproc N``, which runs that command): :func:`join_process_group` initialises the
  group from the environment, gloo for CPU tensors (nccl for CUDA tensors when a GPU is present),
  with a timeout on every collective call;
- Ray Train: Ray initialises the group in each worker before the training function runs, and
  :func:`join_process_group` finds it and leaves it to Ray.

Without either, the world has one rank and every helper here is a no-op, so a single process
trains exactly as before. Only the functions that talk to a group import torch, so a job that
fits a closed-form model in one process never loads it.

**The same global batch.** Every rank draws the epoch's row permutation from a generator seeded
identically on all ranks (the ``set_epoch`` idea of ``DistributedSampler``: one seeded order per
epoch, shared, never communicated). Step ``s`` covers the rows
``order[s * B * W : (s + 1) * B * W]`` (``B`` the configured batch size, ``W`` the world size):
exactly the rows one process with batch size ``B * W`` takes in its step ``s``. Rank ``r`` takes
every ``W``-th of them from position ``r``, as ``DistributedSampler`` does. When the epoch's last
global batch has a row count that is not a multiple of ``W``, it is padded by repeating its first
rows so that every rank holds the same number (``DistributedSampler`` pads a whole epoch the same
way); only that step weighs those rows twice. Randomness drawn from the same generator after the
permutation (the sampled negatives of the next-item models) is therefore identical on every rank
and equal to the one process's draw.

DistributedDataParallel averages the ranks' gradients. With equal shards, the average of the
ranks' mean losses is the mean loss over the global batch, so for a loss that is a mean over rows
(the LSTM, the autoencoder) a step equals the one-process step on the same global batch up to
floating-point summation order. The next-item models average over real (non-padding) positions,
which differ between shards, and the dropout and sampling noise drawn from torch's generator
differs per rank (each rank seeds it with ``seed + rank``), so for those the distributed run is
the same procedure but not the same numbers.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from segue.data.interactions import Holdout

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger(__name__)

DEFAULT_COLLECTIVE_TIMEOUT_SECONDS = 300
BACKENDS = ("auto", "gloo", "nccl")


class DistributedTrainingError(RuntimeError):
    """A rank (or a Ray Train worker) failed; the message names it."""


@dataclass(frozen=True)
class TrainingWorld:
    """This process's place among the ranks training one model together."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_primary(self) -> bool:
        """Rank 0: the one rank that logs, records the run and writes the package."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def describe(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


SINGLE_PROCESS = TrainingWorld()


def launched_world() -> TrainingWorld:
    """The world the launcher (torchrun or Ray Train) describes in the environment."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as error:
        raise DistributedTrainingError(
            f"RANK, WORLD_SIZE and LOCAL_RANK must be integers: {error}"
        ) from error
    if world_size <= 1:
        return SINGLE_PROCESS
    if not 0 <= rank < world_size:
        raise DistributedTrainingError(f"RANK={rank} is outside WORLD_SIZE={world_size}")
    return TrainingWorld(rank, world_size, local_rank)


def is_primary_process() -> bool:
    """False only on the ranks other than 0 of a launched group."""
    return launched_world().is_primary


def resolve_backend(backend: str = "auto") -> str:
    """``auto``: gloo for CPU tensors, and nccl for CUDA tensors when a GPU is present."""
    if backend not in BACKENDS:
        raise DistributedTrainingError(
            f"distributed.backend: {backend!r} is not one of {', '.join(BACKENDS)}"
        )
    if backend != "auto":
        return backend
    import torch

    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def join_process_group(
    timeout_seconds: float = DEFAULT_COLLECTIVE_TIMEOUT_SECONDS, backend: str = "auto"
) -> TrainingWorld:
    """Join the launcher's process group (initialising it under torchrun) and say where we stand.

    Idempotent: the first call initialises, later ones (the trainer's own) find the group. A
    collective call that waits longer than ``timeout_seconds`` fails instead of hanging. Under
    Ray Train the group already exists and its timeout is Ray's ``TorchConfig.timeout_s``.
    """
    world = launched_world()
    if not world.is_distributed:
        return world
    import torch.distributed as dist

    if not dist.is_available():
        raise DistributedTrainingError("this torch build has no torch.distributed")
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise DistributedTrainingError(
                f"WORLD_SIZE={world.world_size} but MASTER_ADDR/MASTER_PORT are not set: "
                "start the ranks with torchrun (or `segue train --nproc N`)"
            )
        dist.init_process_group(
            backend=resolve_backend(backend),
            timeout=timedelta(seconds=timeout_seconds),
            rank=world.rank,
            world_size=world.world_size,
        )
        atexit.register(_leave_process_group)
        logger.info("%s joined the process group", world.describe())
    if dist.get_world_size() != world.world_size or dist.get_rank() != world.rank:
        raise DistributedTrainingError(
            f"the process group ({dist.get_rank()} of {dist.get_world_size()}) does not match "
            f"the environment ({world.describe()})"
        )
    return world


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


# -- this rank's share of the work ------------------------------------------------------------

# The world the trainer is training in, set for the duration of one fit: the batch and holdout
# helpers below read it, so a model's batch generator needs no distributed argument of its own.
_training_world: ContextVar[TrainingWorld] = ContextVar(
    "segue_training_world", default=SINGLE_PROCESS
)


@contextmanager
def training_in(world: TrainingWorld) -> Iterator[TrainingWorld]:
    """Share batches and validation cases among ``world``'s ranks inside this block."""
    token = _training_world.set(world)
    try:
        yield world
    finally:
        _training_world.reset(token)


def training_world() -> TrainingWorld:
    """The world of the fit in progress (one process outside a fit)."""
    return _training_world.get()


def rank_batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """This rank's rows of every global batch of one epoch, in ``order``.

    ``batch_size`` is the per-rank batch: a global batch holds ``batch_size * world_size`` rows.
    See the module docstring for what makes it the same global batch as one process's.
    """
    world = _training_world.get()
    span = batch_size * world.world_size
    for start in range(0, len(order), span):
        rows = order[start : start + span]
        if world.is_distributed:
            padded = -(-len(rows) // world.world_size) * world.world_size
            rows = np.resize(rows, padded)[world.rank :: world.world_size]
        yield rows


def holdout_share(holdout: Holdout) -> Holdout:
    """This rank's validation cases (every ``world_size``-th); all of them in one process, or
    when there are fewer cases than ranks."""
    world = _training_world.get()
    if not world.is_distributed or len(holdout) < world.world_size:
        return holdout
    step, start = world.world_size, world.rank
    return Holdout(holdout.histories[start::step], holdout.targets[start::step])


# -- collective calls -------------------------------------------------------------------------


def mean_across_ranks(values: dict[str, float], weight: float = 1.0) -> dict[str, float]:
    """Weighted mean of every value over the ranks (weights: e.g. each rank's case count).

    Every rank gets the same result. Means over disjoint shards weighted by their sizes give
    the mean over all cases, exactly as one process computes it.
    """
    world = _training_world.get()
    if not world.is_distributed:
        return dict(values)
    import torch
    import torch.distributed as dist

    keys = sorted(values)
    totals = torch.tensor([weight, *(values[key] * weight for key in keys)], dtype=torch.float64)
    dist.all_reduce(totals)
    total_weight = float(totals[0])
    return {key: float(totals[i + 1]) / total_weight for i, key in enumerate(keys)}


def decide_on_primary(*flags: bool) -> tuple[bool, ...]:
    """Rank 0's flags on every rank, so every rank takes the same branch (e.g. stop now)."""
    world = _training_world.get()
    if not world.is_distributed:
        return flags
    import torch
    import torch.distributed as dist

    decision = torch.tensor([1.0 if flag else 0.0 for flag in flags], dtype=torch.float64)
    dist.broadcast(decision, src=0)
    return tuple(bool(value) for value in decision.tolist())


# -- the network ---------------------------------------------------------------------------------


def _loss_module(network: nn.Module, loss_function: Callable[..., torch.Tensor]) -> nn.Module:
    from torch import nn

    class BatchLoss(nn.Module):
        """One batch's loss as a module: DistributedDataParallel runs it as ``forward`` (so its
        gradient hooks see every step) while the loss function keeps the plain network, with
        its attributes and its other methods."""

        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, batch: tuple[torch.Tensor, ...], epoch: int) -> torch.Tensor:
            return loss_function(self.network, batch, epoch)

    return BatchLoss()


def batch_loss(
    network: nn.Module, loss_function: Callable[..., torch.Tensor]
) -> Callable[[tuple[Any, ...], int], torch.Tensor]:
    """``(batch, epoch) -> loss`` for the trainer: the loss function itself in one process,
    the network wrapped in DistributedDataParallel (gradients averaged over ranks) in many.

    Wrapping broadcasts rank 0's parameters, so every rank starts from the same weights.
    """
    world = _training_world.get()
    if not world.is_distributed:
        return lambda batch, epoch: loss_function(network, batch, epoch)
    from torch.nn.parallel import DistributedDataParallel

    module = _loss_module(network, loss_function)
    device = next(network.parameters()).device
    device_ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


@contextmanager
def failures_named(world: TrainingWorld) -> Iterator[None]:
    """Let an error raised on one rank say which rank raised it (log line and traceback note)."""
    try:
        yield
    except Exception as error:
        if world.is_distributed:
            note = f"raised on {world.describe()}"
            if _is_collective_failure(error):
                note += (
                    ": a collective call failed, so another rank stopped or did not answer "
                    "within the collective timeout"
                )
            error.add_note(note)
            logger.error("%s failed: %s: %s", world.describe(), type(error).__name__, error)
        raise


def _is_collective_failure(error: BaseException) -> bool:
    import torch.distributed as dist

    backend_error = getattr(dist, "DistBackendError", None)
    if backend_error is not None and isinstance(error, backend_error):
        return True
    # gloo reports a peer that died or a timed-out wait as a plain RuntimeError.
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        sign in text for sign in ("gloo", "nccl", "Connection closed by peer", "Timed out")
    )
