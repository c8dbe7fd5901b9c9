"""SASRec: causal self-attention over the recent songs, predicting the next one at every position."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn
from torch.nn import functional

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer, network_fit_bytes
from segue.models.sequence_training import (
    build_seeded,
    pad_histories,
    popularity_scores,
    train_next_item_network,
)
from segue.models.trainer import arrays_to_state, state_to_arrays


class SasRecConfig(ModelConfig):
    embedding_dim: int = Field(64, ge=1, le=4096)
    num_blocks: int = Field(2, ge=1, le=32)
    num_heads: int = Field(1, ge=1, le=64)
    dropout: float = Field(0.2, ge=0.0, lt=1.0)
    max_length: int = Field(50, ge=1, le=10_000)
    epochs: int = Field(30, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1, le=65_536)
    learning_rate: float = Field(0.005, gt=0.0, le=1.0)
    patience: int = Field(3, ge=1, le=1000)
    full_softmax_max_items: int = Field(20_000, ge=1)
    sampled_negatives: int = Field(2048, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _heads_divide_embedding(self) -> SasRecConfig:
        if self.embedding_dim % self.num_heads:
            raise ValueError("embedding_dim must be a multiple of num_heads")
        return self


class CausalAttentionBlock(nn.Module):
    """Pre-norm block: masked multi-head self-attention, then a position-wise feed-forward."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.attention_norm = nn.LayerNorm(dim)
        self.projection = nn.Linear(dim, 3 * dim)
        self.attention_output = nn.Linear(dim, dim)
        self.feed_forward_norm = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, states: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        batch, length, dim = states.shape
        query, key, value = (
            part.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)
            for part in self.projection(self.attention_norm(states)).chunk(3, dim=-1)
        )
        attended = functional.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=allowed,
            dropout_p=self.dropout if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, dim)
        states = states + self.residual_dropout(self.attention_output(attended))
        return states + self.residual_dropout(self.feed_forward(self.feed_forward_norm(states)))


class SasRecNetwork(nn.Module):
    """Item + learned position embeddings -> causal blocks -> layer norm; shared output items."""

    def __init__(self, config: SasRecConfig, n_items: int) -> None:
        super().__init__()
        self.n_items = n_items
        self.items = nn.Embedding(n_items + 1, config.embedding_dim, padding_idx=n_items)
        nn.init.normal_(self.items.weight, std=config.embedding_dim**-0.5)
        with torch.no_grad():
            self.items.weight[n_items].zero_()
        self.positions = nn.Embedding(config.max_length, config.embedding_dim)
        # Same scale as the items: a louder position signal would drown which song was played.
        nn.init.normal_(self.positions.weight, std=config.embedding_dim**-0.5)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            CausalAttentionBlock(config.embedding_dim, config.num_heads, config.dropout)
            for _ in range(config.num_blocks)
        )
        self.final_norm = nn.LayerNorm(config.embedding_dim)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(batch, length) right-aligned item indices -> (batch, length, dim) states."""
        length = inputs.shape[1]
        real = inputs != self.n_items
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        # A position sees itself and the real items before it; padding attends only to itself,
        # which keeps every softmax row non-empty, and its output is never read.
        allowed = (causal & real[:, None, :]) | torch.eye(length, dtype=torch.bool)
        allowed = allowed[:, None]
        states = self.items(inputs) + self.positions.weight[-length:]
        states = self.dropout(states) * real[..., None]
        for block in self.blocks:
            states = block(states, allowed) * real[..., None]
        return self.final_norm(states)

    def item_vectors(self) -> torch.Tensor:
        return self.items.weight[: self.n_items]


class SasRecScorer(Scorer):
    """Self-attentive next-item model over the last ``max_length`` items.

    Histories are right-aligned (the latest item always sits at the last position) and the
    state at the last position scores the catalogue against the shared item embeddings. The
    softmax covers the whole catalogue up to ``full_softmax_max_items`` items; above that it
    runs over in-batch targets plus popularity-sampled negatives with logQ correction.
    """

    name = "sasrec"
    config_class = SasRecConfig
    uses_order = True
    refit_with_validation = False
    config: SasRecConfig

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """Item embeddings and output vectors, trained with Adam, and one batch's logits: over
        the catalogue, or over the sampled candidates above ``full_softmax_max_items``."""
        config, items = self.config, train.n_items
        positions = config.batch_size * config.max_length
        candidates = items
        if items > config.full_softmax_max_items:
            candidates = min(items, config.sampled_negatives + positions)
        return network_fit_bytes(
            parameters=(items + 1 + config.max_length) * config.embedding_dim
            + 8 * config.num_blocks * config.embedding_dim**2,
            logits=positions * candidates,
            n_items=items,
            n_interactions=train.n_interactions,
        )

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        counts = train.item_counts()
        self.popularity = popularity_scores(counts)
        self.network = build_seeded(lambda: SasRecNetwork(self.config, self.n_items), self.seed)
        self.training_history = train_next_item_network(
            self,
            self.network,
            train,
            validation,
            align="right",
            output=lambda network: (network.item_vectors(), None),
        )

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        inputs = pad_histories(histories, self.config.max_length, self.n_items, align="right")
        self.network.eval()
        with torch.no_grad():
            final = self.network(torch.from_numpy(inputs))[:, -1]
            scores = (final @ self.network.item_vectors().T).numpy()
        empty = np.array([len(history) == 0 for history in histories])
        scores[empty] = self.popularity
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity, **state_to_arrays(self.network)}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.popularity = state["popularity"]
        self.network = build_seeded(lambda: SasRecNetwork(self.config, self.n_items), self.seed)
        arrays_to_state(self.network, state)
        self.network.eval()
