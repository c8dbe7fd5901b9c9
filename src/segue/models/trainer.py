"""The shared trainer for neural models: Adam, shuffled batches, early stopping, a progress bar.

Closed-form models never come here. A neural scorer hands over its network, a batch generator
and a loss; validation is full-ranking NDCG@k on the validation holdout (k is the scorer's
``validation_k``, the evaluation cut-off), and the best epoch's weights are restored at the end.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from segue.data.interactions import Holdout
from segue.evaluation.evaluator import full_ranking_metrics
from segue.models.base import Scorer

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
    """Train in place; return one record per epoch ({"epoch", "loss", "val_*"}).

    ``loss_function(network, batch, epoch)`` returns the mean loss of one batch. ``validate``
    returns validation metrics; the best ``schedule.validation_metric`` epoch is kept and
    training stops after ``patience`` epochs without improvement.
    """
    # Dropout and init draw from torch's default generator: seed it for this fit only.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(schedule.seed)
        return _train_seeded(network, schedule, batches, loss_function, validate, label)


def _train_seeded(
    network: nn.Module,
    schedule: TrainingSchedule,
    batches: BatchFactory,
    loss_function: LossFunction,
    validate: Callable[[], dict[str, float]] | None,
    label: str,
) -> list[dict[str, float]]:
    from tqdm.auto import tqdm

    optimizer = torch.optim.Adam(
        network.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    rng = np.random.default_rng(schedule.seed)
    history: list[dict[str, float]] = []
    best_value, best_state, stale = -np.inf, None, 0
    bar = tqdm(range(1, schedule.epochs + 1), desc=label, unit="epoch", leave=False)
    for epoch in bar:
        network.train()
        total, count = 0.0, 0
        for batch in batches(rng):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(network, batch, epoch)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            count += 1
        record = {"epoch": float(epoch), "loss": total / max(count, 1)}
        network.eval()
        if validate is not None:
            with torch.no_grad():
                record.update({f"val_{k}": v for k, v in validate().items()})
        history.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        current = record.get(f"val_{schedule.validation_metric}")
        if current is None:
            continue
        if current > best_value:
            best_value, best_state, stale = current, copy.deepcopy(network.state_dict()), 0
        else:
            stale += 1
            if stale >= schedule.patience:
                logger.info("%s: early stop at epoch %d", label, epoch)
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    return history


def validation_callback(
    scorer: Scorer, holdout: Holdout | None, k: int = 10, max_cases: int = 2000
) -> Callable[[], dict[str, float]] | None:
    """Full-ranking NDCG@k and HitRate@k of ``scorer`` on (a fixed sample of) the validation holdout."""
    if holdout is None or not len(holdout):
        return None
    if len(holdout) > max_cases:
        keep = np.random.default_rng(0).choice(len(holdout), max_cases, replace=False)
        holdout = Holdout([holdout.histories[i] for i in keep], [holdout.targets[i] for i in keep])

    def run() -> dict[str, float]:
        metrics = full_ranking_metrics(scorer, holdout, (k,))
        return {
            key: value for key, value in metrics.items() if key.startswith(("ndcg", "hit_rate"))
        }

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
