"""Mult-VAE: a variational autoencoder over a user's items with a multinomial likelihood.

The encoder reads the L2-normalised item row (with input dropout while training) and gives a
Gaussian over a latent user vector; the decoder turns it into a softmax over the catalogue. The
KL term's weight rises linearly from 0 to ``beta_max`` over ``anneal_epochs``. Scoring uses the
posterior mean, so it is deterministic.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional

from segue.models.dense_user_item import DenseTrainingConfig, DenseUserItemScorer


class MultVaeConfig(DenseTrainingConfig):
    """Layer sizes, input dropout, KL annealing and training schedule."""

    hidden_size: int = Field(600, ge=1, le=16_384)
    latent_size: int = Field(200, ge=1, le=4096)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    beta_max: float = Field(0.2, ge=0.0, le=10.0)
    anneal_epochs: int = Field(20, ge=1, le=10_000)
    epochs: int = Field(100, ge=1, le=10_000)
    batch_size: int = Field(128, ge=1, le=65_536)
    learning_rate: float = Field(0.003, gt=0.0, le=1.0)
    patience: int = Field(10, ge=1, le=1000)


class MultVaeNetwork(nn.Module):
    """Encoder n_items -> hidden -> (mean, log-variance); decoder latent -> hidden -> n_items."""

    def __init__(self, n_items: int, config: MultVaeConfig) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(config.dropout)
        self.encoder = nn.Sequential(
            nn.Linear(n_items, config.hidden_size),
            nn.Tanh(),
            nn.Linear(config.hidden_size, 2 * config.latent_size),
        )
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_size, config.hidden_size),
            nn.Tanh(),
            nn.Linear(config.hidden_size, n_items),
        )

    def encode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(self.input_dropout(functional.normalize(rows, dim=1)))
        mean, log_variance = hidden.chunk(2, dim=1)
        return mean, log_variance

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Item logits from the posterior mean (the scoring path)."""
        mean, _ = self.encode(rows)
        return self.decoder(mean)


class MultVaeScorer(DenseUserItemScorer):
    """Scores are the decoder's logits; the loss is multinomial log-likelihood plus weighted KL."""

    name = "mult-vae"
    config_class = MultVaeConfig

    config: MultVaeConfig

    def _build_network(self) -> nn.Module:
        return MultVaeNetwork(self.n_items, self.config)

    def _loss(
        self, network: nn.Module, batch: tuple[torch.Tensor, ...], epoch: int
    ) -> torch.Tensor:
        (rows,) = batch
        mean, log_variance = network.encode(rows)
        latent = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        log_likelihood = (functional.log_softmax(network.decoder(latent), dim=1) * rows).sum(dim=1)
        kl = -0.5 * (1.0 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1)
        beta = self.config.beta_max * min(1.0, epoch / self.config.anneal_epochs)
        return (beta * kl - log_likelihood).mean()
