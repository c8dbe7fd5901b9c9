"""What the neural user-item models share: a user is a dense binary row over the catalogue.

Rows are built from the CSR training matrix one mini-batch at a time, which stays cheap while
batch x catalogue fits in memory (ml-latest-small: 128 x 9,724 floats). The network is rebuilt
from config + ``n_items`` on load and its weights restored from arrays.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer, network_fit_bytes
from segue.models.distributed import rank_batches
from segue.models.trainer import (
    BatchFactory,
    arrays_to_state,
    state_to_arrays,
    train_scorer_network,
)


def history_rows(histories: list[np.ndarray], n_items: int) -> torch.Tensor:
    """Binary float32 (len(histories), n_items): 1 where the item is in the history."""
    return torch.from_numpy(Interactions(histories, n_items).to_csr().toarray())


def shuffled_row_batches(matrix: sp.csr_matrix, batch_size: int) -> BatchFactory:
    """Each epoch, the matrix's rows in a fresh order, as dense (batch, n_items) tensors (in a
    distributed fit, this rank's share of each global batch of ``batch_size`` rows per rank)."""

    def batches(rng: np.random.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        for rows in rank_batches(rng.permutation(matrix.shape[0]), batch_size):
            yield (torch.from_numpy(matrix[rows].toarray()),)

    return batches


class DenseTrainingConfig(ModelConfig):
    """The training knobs every dense user-item network has; subclasses set their own defaults."""

    epochs: int = Field(50, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    learning_rate: float = Field(0.01, gt=0.0, le=1.0)
    patience: int = Field(8, ge=1, le=1000)


class DenseUserItemScorer(Scorer):
    """A network mapping a user's binary item row to one score per item, trained by the shared trainer.

    Subclasses build the network (whose ``forward`` returns the scores) and define the loss;
    their config carries epochs, batch_size, learning_rate and patience.
    """

    tasks = frozenset({"user-items"})
    refit_with_validation = False

    config: DenseTrainingConfig
    network: nn.Module

    @abstractmethod
    def _build_network(self) -> nn.Module:
        """A fresh network for ``self.n_items`` items, shaped by ``self.config``."""

    @abstractmethod
    def _loss(
        self, network: nn.Module, batch: tuple[torch.Tensor, ...], epoch: int
    ) -> torch.Tensor:
        """Mean loss of one batch of binary user rows."""

    def _seeded_network(self) -> nn.Module:
        # Initial weights come from the model's seed without disturbing the caller's torch state.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            network = self._build_network()
        return network.eval()

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """The item-wide input and output layers (items x hidden_size each) dominate the
        network; a batch is dense rows over the catalogue, in and out."""
        items = train.n_items
        hidden = int(getattr(self.config, "hidden_size", 0))
        return network_fit_bytes(
            parameters=2 * items * hidden,
            logits=2 * self.config.batch_size * items,
            n_items=items,
            n_interactions=train.n_interactions,
            example_bytes=48,
        )

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        self.network = self._seeded_network()
        self.training_history = train_scorer_network(
            self,
            self.network,
            shuffled_row_batches(train.to_csr(), self.config.batch_size),
            self._loss,
            validation,
        )

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return self.network(history_rows(histories, self.n_items)).numpy()

    def _state(self) -> dict[str, np.ndarray]:
        return state_to_arrays(self.network)

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.network = self._seeded_network()
        arrays_to_state(self.network, state)
        self.network.eval()
