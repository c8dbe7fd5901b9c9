"""EDLAE: EASE whose ridge penalty also stands for dropout on the input (closed form, no training).

A linear autoencoder trained with dropout probability ``p`` on its input, and with the emphasis on
the dropped entries that forces a zero diagonal, has the closed form of EASE with a diagonal
penalty that grows with each item's popularity (Steck 2020, "Autoencoders that don't overfit
towards the identity"):

    P = (G + L)^-1,  L = diag(l2 + p / (1 - p) * diag(G)),  G = X^T X,
    B = I - P diag(1 / diag(P))   (B_ij = -P_ij / P_jj, B_jj = 0).

``dropout`` 0 is exactly EASE with the same ``l2``. The weights are dense float32 (items x items).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from pydantic import Field

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig
from segue.models.ease import direct_inverse, weights_from_inverse
from segue.models.weight_rows import ItemWeightsScorer


class EdlaeConfig(ModelConfig):
    """Ridge strength and input dropout probability (tuned on validation, ml-latest-small)."""

    l2: float = Field(200.0, gt=0.0, le=1e7)
    dropout: float = Field(0.4, ge=0.0, lt=1.0)


def edlae_penalty(matrix: sp.csr_matrix, l2: float, dropout: float) -> np.ndarray:
    """The diagonal of L: l2 + dropout / (1 - dropout) * (how often each item occurs)."""
    counts = np.asarray(matrix.multiply(matrix).sum(axis=0), dtype=np.float64).ravel()
    return l2 + dropout / (1.0 - dropout) * counts


def edlae_weights(matrix: sp.csr_matrix, l2: float, dropout: float) -> np.ndarray:
    """B = I - P diag(1/diag(P)) with P = (X^T X + L)^-1 and L from ``edlae_penalty``.

    With fewer users than items, P comes from the users x users system (Woodbury):
    P = L^-1 - L^-1 X^T (I + X L^-1 X^T)^-1 X L^-1, as EASE does with a scalar penalty.
    """
    n_users, n_items = matrix.shape
    penalty = edlae_penalty(matrix, l2, dropout)
    if n_users < n_items:
        users = matrix.toarray().astype(np.float64)
        scaled = users / penalty
        kernel = users @ scaled.T
        kernel[np.diag_indices_from(kernel)] += 1.0
        solved = la.cho_solve(la.cho_factor(kernel, check_finite=False), scaled)
        # The users x users solve stays float64; the items x items product runs in float32.
        inverse = -(scaled.T.astype(np.float32) @ solved.astype(np.float32))
        inverse[np.diag_indices_from(inverse)] += (1.0 / penalty).astype(np.float32)
    else:
        inverse = direct_inverse(matrix, penalty)
    return weights_from_inverse(inverse)


class EdlaeScorer(ItemWeightsScorer):
    """Score = history vector x B, B dense items x items (like dense EASE)."""

    name = "edlae"
    config_class = EdlaeConfig

    config: EdlaeConfig

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """Peak bytes of the dense work arrays, route by route (see ``edlae_weights``)."""
        items, users = train.n_items, len(train)
        sparse_input = 48 * train.n_interactions
        if users < items:
            # users and scaled (float64), solved (float64), their float32 copies; B as float32.
            return sparse_input + 32 * users * items + 16 * users**2 + 4 * items**2
        # The float64 Gram (factored in place), the float64 inverse, then B as float32.
        return sparse_input + 20 * items**2

    def fit_alternative(self, train: Interactions) -> str:
        return "sparse EASE (--set models.ease.dense_max_items=0), or item-knn"

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        self.weights = edlae_weights(train.to_csr(), self.config.l2, self.config.dropout)
