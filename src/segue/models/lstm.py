"""The project's original next-song LSTM, kept as a reference model.

The architecture is the original one (song embedding 16, five stacked LSTM layers of 64 units,
a 128-unit ReLU layer, a softmax over songs), reading a window of the last two songs to predict
the next. Two things differ on purpose: it trains with Adam in the shared trainer, and it keeps
the epoch with the best validation NDCG rather than the best accuracy.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer, network_fit_bytes
from segue.models.sequence_training import (
    build_seeded,
    pad_histories,
    popularity_scores,
    shuffled_batches,
    window_examples,
)
from segue.models.trainer import arrays_to_state, state_to_arrays, train_scorer_network


class LstmConfig(ModelConfig):
    embedding_dim: int = Field(16, ge=1, le=4096)
    hidden_size: int = Field(64, ge=1, le=4096)
    num_layers: int = Field(5, ge=1, le=16)
    dense_size: int = Field(128, ge=1, le=8192)
    window: int = Field(2, ge=1, le=1000)
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(256, ge=1, le=65_536)
    learning_rate: float = Field(0.001, gt=0.0, le=1.0)
    patience: int = Field(3, ge=1, le=1000)


class LstmNetwork(nn.Module):
    """Embedding -> stacked LSTM -> dense + ReLU -> one logit per song (index n_items pads)."""

    def __init__(self, config: LstmConfig, n_items: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_items + 1, config.embedding_dim, padding_idx=n_items)
        self.lstm = nn.LSTM(
            config.embedding_dim, config.hidden_size, config.num_layers, batch_first=True
        )
        self.dense = nn.Linear(config.hidden_size, config.dense_size)
        self.output = nn.Linear(config.dense_size, n_items)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embedding(windows))
        return self.output(torch.relu(self.dense(states[:, -1])))


class LstmScorer(Scorer):
    """Scores the next song from the last ``window`` songs (padded in front when fewer)."""

    name = "lstm"
    config_class = LstmConfig
    uses_order = True
    refit_with_validation = False
    config: LstmConfig

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """Song embeddings and the song-wide output layer, trained with Adam; a batch's logits
        over the whole catalogue (this model always uses the full softmax); the windows."""
        config, items = self.config, train.n_items
        hidden = config.hidden_size
        return network_fit_bytes(
            parameters=(items + 1) * config.embedding_dim
            + (config.dense_size + 1) * items
            + 4 * config.num_layers * (config.embedding_dim + hidden + 2) * hidden,
            logits=config.batch_size * items,
            n_items=items,
            n_interactions=train.n_interactions,
            example_bytes=8 * (config.window + 1),
        )

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        self.popularity = popularity_scores(train.item_counts())
        self.network = build_seeded(lambda: LstmNetwork(self.config, self.n_items), self.seed)
        inputs, targets = window_examples(train.sequences, self.config.window, self.n_items)
        input_tensor, target_tensor = torch.from_numpy(inputs), torch.from_numpy(targets)

        def batches(rng: np.random.Generator):
            for rows in shuffled_batches(len(targets), self.config.batch_size, rng):
                index = torch.from_numpy(rows)
                yield input_tensor[index], target_tensor[index]

        def loss(network: nn.Module, batch: tuple[torch.Tensor, ...], epoch: int) -> torch.Tensor:
            windows, next_items = batch
            return functional.cross_entropy(network(windows), next_items)

        self.training_history = train_scorer_network(self, self.network, batches, loss, validation)

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        windows = pad_histories(histories, self.config.window, self.n_items, align="right")
        self.network.eval()
        with torch.no_grad():
            scores = self.network(torch.from_numpy(windows)).numpy()
        empty = np.array([len(history) == 0 for history in histories])
        scores[empty] = self.popularity
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity, **state_to_arrays(self.network)}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.popularity = state["popularity"]
        self.network = build_seeded(lambda: LstmNetwork(self.config, self.n_items), self.seed)
        arrays_to_state(self.network, state)
        self.network.eval()
