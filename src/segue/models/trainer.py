"""The shared trainer for neural models: Adam, shuffled batches, early stopping, a progress bar.

Closed-form models never come here. A neural scorer hands over its network, a batch generator
and a loss; validation is full-ranking NDCG@k on the validation holdout (k is the scorer's
``validation_k``, the evaluation cut-off), and the best epoch's weights are restored at the end.

The same call trains one rank of many when the process was started by torchrun or Ray Train
(:mod:`segue.models.distributed` says how): the network is wrapped in DistributedDataParallel,
each rank takes its share of every global batch and of the validation cases, validation metrics
are reduced across ranks, and rank 0's early-stopping decision is broadcast so that every rank
stops at the same epoch with the same weights.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from segue.data.interactions import Holdout
from segue.evaluation.evaluator import full_ranking_metrics
from segue.models.base import Scorer
from segue.models.distributed import (
    TrainingWorld,
    batch_loss,
    decide_on_primary,
    failures_named,
    holdout_share,
    join_process_group,
    mean_across_ranks,
    training_in,
)

logger = logging.getLogger(__name__)

BatchFactory = Callable[[np.random.Generator], Iterator[tuple[torch.Tensor, ...]]]
LossFunction = Callable[[nn.Module, tuple[torch.Tensor, ...], int], torch.Tensor]


@dataclass(frozen=True)
class TrainingSchedule:
    epochs: int
    learning_rate: float
    patience: int
    seed: int
    weight_decay: float = 0.0
    validation_metric: str = "ndcg_at_10"


def state_to_arrays(network: nn.Module, prefix: str = "net.") -> dict[str, np.ndarray]:
    return {prefix + k: v.detach().cpu().numpy() for k, v in network.state_dict().items()}


def arrays_to_state(network: nn.Module, state: dict[str, np.ndarray], prefix: str = "net.") -> None:
    tensors = {
        k[len(prefix) :]: torch.from_numpy(np.array(v))
        for k, v in state.items()
        if k.startswith(prefix)
    }
    network.load_state_dict(tensors)


def train_network(
    network: nn.Module,
    schedule: TrainingSchedule,
    batches: BatchFactory,
    loss_function: LossFunction,
    *,
    validate: Callable[[], dict[str, float]] | None = None,
    label: str = "training",
) -> list[dict[str, float]]:
    """Train in place; return one record per epoch ({"epoch", "loss", "epoch_seconds", "val_*"}).

    ``loss_function(network, batch, epoch)`` returns the mean loss of one batch. ``validate``
    returns validation metrics; the best ``schedule.validation_metric`` epoch is kept and
    training stops after ``patience`` epochs without improvement.

    Started by torchrun or Ray Train, every rank makes this same call: ``batches`` yields the
    rank's share of each global batch when it draws rows through ``rank_batches`` (the shared
    batch helpers do), the loss is averaged over ranks, and every rank holds the same weights
    and returns the same history (but for ``epoch_seconds``, each rank's own clock).
    """
    world = join_process_group()
    # Dropout and init draw from torch's default generator: seed it for this fit only, per rank
    # so that ranks draw independent noise (rank 0 of one process draws what it always drew).
    with torch.random.fork_rng(devices=[]), training_in(world), failures_named(world):
        torch.manual_seed(schedule.seed + world.rank)
        return _train_seeded(network, schedule, batches, loss_function, validate, label, world)


def _train_seeded(
    network: nn.Module,
    schedule: TrainingSchedule,
    batches: BatchFactory,
    loss_function: LossFunction,
    validate: Callable[[], dict[str, float]] | None,
    label: str,
    world: TrainingWorld,
) -> list[dict[str, float]]:
    from tqdm.auto import tqdm

    step_loss = batch_loss(network, loss_function)
    optimizer = torch.optim.Adam(
        network.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    # The same seed on every rank: the shared permutation each rank takes its share of.
    rng = np.random.default_rng(schedule.seed)
    history: list[dict[str, float]] = []
    best_value, best_state, stale = -np.inf, None, 0
    epochs = range(1, schedule.epochs + 1)
    bar = tqdm(epochs, desc=label, unit="epoch", leave=False, disable=not world.is_primary)
    for epoch in bar:
        started = time.perf_counter()
        network.train()
        total, count = 0.0, 0
        for batch in batches(rng):
            optimizer.zero_grad(set_to_none=True)
            loss = step_loss(batch, epoch)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            count += 1
        record = {"epoch": float(epoch), **mean_across_ranks({"loss": total / max(count, 1)})}
        network.eval()
        if validate is not None:
            with torch.no_grad():
                record.update({f"val_{k}": v for k, v in validate().items()})
        record["epoch_seconds"] = time.perf_counter() - started
        history.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        current = record.get(f"val_{schedule.validation_metric}")
        if current is None:
            continue
        improved = current > best_value
        improved, stop = decide_on_primary(
            improved, not improved and stale + 1 >= schedule.patience
        )
        if improved:
            best_value, best_state, stale = current, copy.deepcopy(network.state_dict()), 0
        else:
            stale += 1
            if stop:
                if world.is_primary:
                    logger.info("%s: early stop at epoch %d", label, epoch)
                break
    del step_loss  # a DistributedDataParallel wrapper lets go of the network's gradient hooks
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return history


def validation_callback(
    scorer: Scorer, holdout: Holdout | None, k: int = 10, max_cases: int = 2000
) -> Callable[[], dict[str, float]] | None:
    """Full-ranking NDCG@k and HitRate@k of ``scorer`` on (a fixed sample of) the validation holdout.

    In a distributed fit the ranks share the cases and reduce the means (every rank gets them).
    """
    if holdout is None or not len(holdout):
        return None
    if len(holdout) > max_cases:
        keep = np.random.default_rng(0).choice(len(holdout), max_cases, replace=False)
        holdout = Holdout([holdout.histories[i] for i in keep], [holdout.targets[i] for i in keep])

    def run() -> dict[str, float]:
        # Each rank measures its share of the cases; the case-weighted mean over ranks is the
        # mean over all cases, the figure one process reports.
        cases = holdout_share(holdout)
        metrics = full_ranking_metrics(scorer, cases, (k,))
        kept = {
            key: value for key, value in metrics.items() if key.startswith(("ndcg", "hit_rate"))
        }
        return mean_across_ranks(kept, weight=len(cases))

    return run


def train_scorer_network(
    scorer: Scorer,
    network: nn.Module,
    batches: BatchFactory,
    loss: LossFunction,
    validation: Holdout | None,
) -> list[dict[str, float]]:
    """The shared trainer with the schedule from the scorer's config (epochs, learning_rate,
    patience) and early stopping on full-ranking validation NDCG at the scorer's cut-off."""
    config = scorer.config
    k = scorer.validation_k
    schedule = TrainingSchedule(
        epochs=config.epochs,  # type: ignore[attr-defined]
        learning_rate=config.learning_rate,  # type: ignore[attr-defined]
        patience=config.patience,  # type: ignore[attr-defined]
        seed=scorer.seed,
        validation_metric=f"ndcg_at_{k}",
    )
    return train_network(
        network,
        schedule,
        batches,
        loss,
        validate=validation_callback(scorer, validation, k),
        label=scorer.name,
    )
