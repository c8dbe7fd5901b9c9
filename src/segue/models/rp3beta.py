"""RP3beta: three-step random walks on the user-item graph, popular targets penalised (closed form).

A walk goes item i -> a user who has i -> an item j of that user. With every transition
probability raised to ``alpha`` and the arrival item's popularity dividing by ``pop_j ** beta``
(Paudel et al. 2017, "Updatable, accurate, diverse, and scalable recommendations for
interactive applications"):

    W_ij = pop_i^-alpha * sum_u X_ui X_uj deg_u^-alpha * pop_j^-beta,   W_ii = 0,

with deg_u the user's item count and pop the item's user count. ``beta`` 0 ranks like plain
co-occurrence walks; larger values move recommendations to the long tail. The weights are dense
float32 (items x items).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig
from segue.models.weight_rows import ItemWeightsScorer


class Rp3BetaConfig(ModelConfig):
    """Transition exponent and popularity penalty (tuned on validation, ml-latest-small)."""

    alpha: float = Field(0.5, gt=0.0, le=10.0)
    beta: float = Field(0.5, ge=0.0, le=10.0)


def rp3beta_weights(matrix: sp.csr_matrix, alpha: float, beta: float) -> np.ndarray:
    """W (items x items, float32) of the module docstring; ``matrix`` is users x items."""
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    user_degree = np.asarray(binary.sum(axis=1), dtype=np.float64).ravel()
    popularity = np.asarray(binary.sum(axis=0), dtype=np.float64).ravel()
    user_step = np.power(user_degree, -alpha, where=user_degree > 0, out=np.zeros_like(user_degree))
    item_step = np.power(popularity, -alpha, where=popularity > 0, out=np.zeros_like(popularity))
    penalty = np.power(popularity, -beta, where=popularity > 0, out=np.zeros_like(popularity))
    # Both steps ^ alpha, in float32 so the dense walk matrix is built once, at 4 bytes a pair.
    to_users = (sp.diags(item_step) @ binary.T.tocsr()).astype(np.float32)  # item -> user
    to_items = (sp.diags(user_step) @ binary).astype(np.float32)  # user -> item
    weights = (to_users @ to_items).toarray()
    weights *= penalty.astype(np.float32)
    np.fill_diagonal(weights, 0.0)
    return weights


class Rp3BetaScorer(ItemWeightsScorer):
    """Score of item j = sum over the history's items i of W_ij."""

    name = "rp3beta"
    config_class = Rp3BetaConfig

    config: Rp3BetaConfig

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """The sparse inputs, the sparse walk product (12 bytes a pair at worst) and dense W."""
        return 64 * train.n_interactions + 16 * train.n_items**2

    def fit_alternative(self, train: Interactions) -> str:
        return "item-knn, whose memory grows with items x neighbours"

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        self.weights = rp3beta_weights(train.to_csr(), self.config.alpha, self.config.beta)
