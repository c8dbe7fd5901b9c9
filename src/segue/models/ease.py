"""EASE: a closed-form item-item linear model with a zero diagonal (no gradient training)."""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from pydantic import Field

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer


class EaseConfig(ModelConfig):
    """Ridge strength of the item-item regression; larger values favour popular co-occurrences."""

    l2: float = Field(200.0, gt=0.0, le=1e7)


def ease_weights(matrix: sp.csr_matrix, l2: float) -> np.ndarray:
    """B = I - P diag(1/diag(P)) with P = (X^T X + l2 I)^-1, i.e. B_ij = -P_ij / P_jj, B_jj = 0.

    With fewer users than items, P comes from the small users x users system instead (Woodbury):
    l2 P = I - X^T (X X^T + l2 I)^-1 X. The factor l2 cancels in B, and the solve costs
    O(users^3) plus one users-deep product, instead of a dense items x items inversion.
    """
    n_users, n_items = matrix.shape
    if n_users < n_items:
        users = matrix.toarray().astype(np.float64)
        kernel = users @ users.T
        kernel[np.diag_indices_from(kernel)] += l2
        solved = la.cho_solve(la.cho_factor(kernel, check_finite=False), users)
        # float32 halves memory and time of the items x items product; the users x users solve
        # above stays float64, which keeps B accurate to ~1e-7 at the regularisation we use.
        inverse = -(users.T.astype(np.float32) @ solved.astype(np.float32))
        inverse[np.diag_indices_from(inverse)] += 1.0
    else:
        gram = (matrix.T @ matrix).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += l2
        factor = la.cho_factor(gram, overwrite_a=True, check_finite=False)
        inverse = la.cho_solve(factor, np.eye(n_items), overwrite_b=True, check_finite=False)
    inverse /= -np.diag(inverse).copy()
    np.fill_diagonal(inverse, 0.0)
    return inverse.astype(np.float32, copy=False)


class EaseScorer(Scorer):
    """Score = history vector x B; strong on MovieLens-like data, dense items x items weights."""

    name = "ease"
    tasks = frozenset({"user-items"})
    config_class = EaseConfig

    config: EaseConfig

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        self.weights = ease_weights(train.to_csr(), self.config.l2)

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.asarray(Interactions(histories, self.n_items).to_csr() @ self.weights)

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.weights = state["weights"]
