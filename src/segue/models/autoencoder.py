"""The original design's autoencoder: a user's item row -> 256 sigmoid units -> a score per item.

Input and target are the same training row, so the network learns which items go together.
Held-out (validation or test) items never enter either side: feeding them in is the leak that
made the original figures look 2.4x better than they were.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional

from segue.models.dense_user_item import DenseTrainingConfig, DenseUserItemScorer


class AutoencoderConfig(DenseTrainingConfig):
    """The original design's 256 sigmoid units; Adam at 0.01 (chosen on validation NDCG@10)."""

    hidden_size: int = Field(256, ge=1, le=16_384)
    epochs: int = Field(50, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    learning_rate: float = Field(0.01, gt=0.0, le=1.0)
    patience: int = Field(8, ge=1, le=1000)


class AutoencoderScorer(DenseUserItemScorer):
    """Scores are the output layer's logits; training minimises per-item binary cross-entropy."""

    name = "autoencoder"
    config_class = AutoencoderConfig

    config: AutoencoderConfig

    def _build_network(self) -> nn.Module:
        return nn.Sequential(
            nn.Linear(self.n_items, self.config.hidden_size),
            nn.Sigmoid(),
            nn.Linear(self.config.hidden_size, self.n_items),
        )

    def _loss(
        self, network: nn.Module, batch: tuple[torch.Tensor, ...], epoch: int
    ) -> torch.Tensor:
        (rows,) = batch
        return functional.binary_cross_entropy_with_logits(network(rows), rows)
