"""GRU4Rec: a GRU reads the recent songs and predicts the next one at every position."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer, network_fit_bytes
from segue.models.sequence_training import (
    build_seeded,
    pad_histories,
    popularity_scores,
    train_next_item_network,
)
from segue.models.trainer import arrays_to_state, state_to_arrays


class Gru4RecConfig(ModelConfig):
    embedding_dim: int = Field(64, ge=1, le=4096)
    hidden_size: int = Field(100, ge=1, le=4096)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    epochs: int = Field(20, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=65_536)
    learning_rate: float = Field(0.005, gt=0.0, le=1.0)
    max_length: int = Field(50, ge=1, le=10_000)
    patience: int = Field(3, ge=1, le=1000)
    full_softmax_max_items: int = Field(20_000, ge=1)
    sampled_negatives: int = Field(2048, ge=1, le=1_000_000)


class Gru4RecNetwork(nn.Module):
    """Item embedding -> GRU -> hidden state per position; output item vectors with a bias."""

    def __init__(self, config: Gru4RecConfig, n_items: int) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, config.embedding_dim, padding_idx=n_items)
        self.dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.embedding_dim, config.hidden_size, batch_first=True)
        self.output_items = nn.Parameter(torch.randn(n_items, config.hidden_size) * 0.05)
        self.output_bias = nn.Parameter(torch.zeros(n_items))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(batch, length) left-aligned item indices -> (batch, length, hidden) states."""
        states, _ = self.gru(self.dropout(self.items(inputs)))
        return self.dropout(states)


class Gru4RecScorer(Scorer):
    """Next-item GRU over the last ``max_length`` items; cross-entropy at every position.

    The softmax covers the whole catalogue up to ``full_softmax_max_items`` items; above that
    it runs over in-batch targets plus popularity-sampled negatives with logQ correction.
    Sequences are left-aligned (padding after the last item), so padding never feeds the state
    that scores the next item.
    """

    name = "gru4rec"
    config_class = Gru4RecConfig
    uses_order = True
    refit_with_validation = False
    config: Gru4RecConfig

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """Item embeddings and output vectors, trained with Adam, and one batch's logits: over
        the catalogue, or over the sampled candidates above ``full_softmax_max_items``."""
        config, items = self.config, train.n_items
        positions = config.batch_size * config.max_length
        candidates = items
        if items > config.full_softmax_max_items:
            candidates = min(items, config.sampled_negatives + positions)
        return network_fit_bytes(
            parameters=items * (config.hidden_size + 1)
            + (items + 1) * config.embedding_dim
            + 3 * (config.embedding_dim + config.hidden_size + 2) * config.hidden_size,
            logits=positions * candidates,
            n_items=items,
            n_interactions=train.n_interactions,
        )

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        counts = train.item_counts()
        self.popularity = popularity_scores(counts)
        self.network = build_seeded(lambda: Gru4RecNetwork(self.config, self.n_items), self.seed)
        self.training_history = train_next_item_network(
            self,
            self.network,
            train,
            validation,
            align="left",
            output=lambda network: (network.output_items, network.output_bias),
        )

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        length = self.config.max_length
        inputs = pad_histories(histories, length, self.n_items, align="left")
        last = np.array([min(len(history), length) - 1 for history in histories])
        self.network.eval()
        with torch.no_grad():
            states = self.network(torch.from_numpy(inputs))
            final = states[torch.arange(len(histories)), torch.from_numpy(np.maximum(last, 0))]
            scores = (final @ self.network.output_items.T + self.network.output_bias).numpy()
        scores[last < 0] = self.popularity
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity, **state_to_arrays(self.network)}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.popularity = state["popularity"]
        self.network = build_seeded(lambda: Gru4RecNetwork(self.config, self.n_items), self.seed)
        arrays_to_state(self.network, state)
        self.network.eval()
