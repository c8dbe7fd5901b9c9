"""What the neural sequence models (LSTM, GRU4Rec, SASRec) share to train: padded batches, the
next-item loss and the next-item training loop, all handing over to the shared trainer.

Every network reserves index ``n_items`` as padding, so a padded position is never a score
column. Like the models that use it, this module imports torch; only the registry's lazy
loading keeps torch out of ``import segue``. Arrays are built once per fit with NumPy; each epoch only shuffles row indices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from segue.data.interactions import Holdout, Interactions
from segue.models.base import Scorer
from segue.models.distributed import rank_batches
from segue.models.trainer import train_scorer_network

NetworkT = TypeVar("NetworkT", bound=nn.Module)
Alignment = Literal["left", "right"]


def pad_histories(
    histories: Sequence[np.ndarray], length: int, pad_index: int, *, align: Alignment
) -> np.ndarray:
    """The last ``length`` items of each history in an (n, length) int64 array.

    ``align="right"`` puts the most recent item in the last column (padding in front), for
    models that read a fixed window; ``"left"`` starts at column 0 (padding after), for
    recurrent models that read the output at the last real position.
    """
    padded = np.full((len(histories), length), pad_index, dtype=np.int64)
    for row, history in enumerate(histories):
        recent = history[-length:] if length else history[:0]
        if align == "right":
            padded[row, length - len(recent) :] = recent
        else:
            padded[row, : len(recent)] = recent
    return padded


def next_item_chunks(
    sequences: Sequence[np.ndarray], length: int, pad_index: int, *, align: Alignment
) -> np.ndarray:
    """Training rows of ``length + 1`` items: inputs are ``row[:-1]``, targets ``row[1:]``.

    Long sequences are cut from the end into chunks that overlap by one item, so every
    transition is a target exactly once and no user's early history is thrown away.
    """
    chunks: list[np.ndarray] = []
    for sequence in sequences:
        end = len(sequence)
        while end >= 2:
            start = max(0, end - length - 1)
            chunks.append(sequence[start:end])
            end = start + 1
    return pad_histories(chunks, length + 1, pad_index, align=align)


def window_examples(
    sequences: Sequence[np.ndarray], window: int, pad_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (n, window), targets (n,)): the ``window`` items before every item but the first.

    Windows at the start of a sequence are shorter and padded in front, which is exactly what
    scoring does with a short history.
    """
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for sequence in sequences:
        if len(sequence) < 2:
            continue
        padded = np.concatenate([np.full(window, pad_index, dtype=np.int64), sequence])
        positions = np.arange(1, len(sequence))
        inputs.append(padded[positions[:, None] + np.arange(window)[None, :]])
        targets.append(sequence[1:])
    if not inputs:
        return np.empty((0, window), dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(inputs), np.concatenate(targets)


def shuffled_batches(
    n_rows: int, batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Row indices of one epoch in random order, ``batch_size`` at a time (in a distributed fit,
    this rank's share of each global batch of ``batch_size`` rows per rank)."""
    yield from rank_batches(rng.permutation(n_rows), batch_size)


def sampling_distribution(item_counts: np.ndarray) -> np.ndarray:
    """Popularity-proportional sampling probabilities, add-one smoothed so none is zero."""
    smoothed = item_counts.astype(np.float64) + 1.0
    return smoothed / smoothed.sum()


def popularity_scores(item_counts: np.ndarray) -> np.ndarray:
    """Popularity scaled to [0, 1]: what a sequence model returns for an empty history."""
    counts = item_counts.astype(np.float32)
    return counts / max(float(counts.max(initial=0.0)), 1.0)


def build_seeded(factory: Callable[[], NetworkT], seed: int) -> NetworkT:
    """Construct a network with weights drawn from ``seed`` without touching global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def next_item_loss(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    item_vectors: torch.Tensor,
    item_bias: torch.Tensor | None,
    negatives: torch.Tensor | None = None,
    log_sampling: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of predicting ``targets`` (n,) from ``hidden`` states (n, dim).

    Without ``negatives`` the softmax runs over the whole catalogue. With them it runs over the
    batch's own targets plus the sampled negatives, and subtracts each candidate's log sampling
    probability (logQ correction) so that popular items, drawn more often, are not over-penalised.
    """
    if negatives is None:
        logits = hidden @ item_vectors.T
        if item_bias is not None:
            logits = logits + item_bias
        return functional.cross_entropy(logits, targets)
    candidates = torch.unique(torch.cat([targets, negatives]))
    logits = hidden @ item_vectors[candidates].T
    if item_bias is not None:
        logits = logits + item_bias[candidates]
    if log_sampling is not None:
        logits = logits - log_sampling[candidates]
    labels = torch.searchsorted(candidates, targets)
    return functional.cross_entropy(logits, labels)


OutputLayer = Callable[[nn.Module], tuple[torch.Tensor, torch.Tensor | None]]


def train_next_item_network(
    scorer: Scorer,
    network: nn.Module,
    train: Interactions,
    validation: Holdout | None,
    *,
    align: Alignment,
    output: OutputLayer,
) -> list[dict[str, float]]:
    """Train a network that predicts the next item at every position (GRU4Rec, SASRec).

    ``output(network)`` gives the item vectors (and bias) the states are scored against. The
    config must carry max_length, batch_size, full_softmax_max_items, sampled_negatives and
    the schedule keys read by :func:`train_scorer_network`.
    """
    config = scorer.config
    n_items = scorer.n_items
    counts = train.item_counts()
    chunks = torch.from_numpy(
        next_item_chunks(train.sequences, config.max_length, n_items, align=align)
    )
    sampled = n_items > config.full_softmax_max_items
    probabilities = sampling_distribution(counts)
    log_sampling = torch.from_numpy(np.log(probabilities).astype(np.float32)) if sampled else None

    def batches(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        for rows in shuffled_batches(len(chunks), config.batch_size, rng):
            batch = chunks[torch.from_numpy(rows)]
            if sampled:
                draws = rng.choice(n_items, config.sampled_negatives, p=probabilities)
                yield batch, torch.from_numpy(draws)
            else:
                yield (batch,)

    def loss(model: nn.Module, batch: tuple[torch.Tensor, ...], epoch: int) -> torch.Tensor:
        inputs, targets = batch[0][:, :-1], batch[0][:, 1:]
        real = (inputs != n_items) & (targets != n_items)
        states = model(inputs)[real]
        vectors, bias = output(model)
        negatives = batch[1] if sampled else None
        return next_item_loss(states, targets[real], vectors, bias, negatives, log_sampling)

    return train_scorer_network(scorer, network, batches, loss, validation)
