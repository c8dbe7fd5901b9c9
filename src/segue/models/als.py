"""Implicit-feedback ALS (through the ``implicit`` library), scored from a history alone.

Training learns item factors Y. Scoring never looks up a stored user: each history's factor is
solved in closed form against Y, so new and known users are treated alike, and only Y is saved.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
from pydantic import Field

from segue.data.interactions import Holdout, Interactions
from segue.models.base import ModelConfig, Scorer


class AlsConfig(ModelConfig):
    """Matrix factorisation size, ridge strength, sweeps, and how much a positive counts."""

    factors: int = Field(64, ge=1, le=4096)
    regularization: float = Field(20.0, gt=0.0, le=1e6)
    iterations: int = Field(15, ge=1, le=1000)
    # implicit's convention: a positive's confidence is alpha (unobserved pairs count 1).
    alpha: float = Field(3.0, ge=1.0, le=1e6)


class AlsScorer(Scorer):
    """Score = user factor x item factors, the user factor fitted to the history."""

    name = "als"
    tasks = frozenset({"user-items"})
    config_class = AlsConfig

    config: AlsConfig

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # implicit runs its own threads (and warns otherwise): a threaded BLAS only oversubscribes.
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.config.factors,
                regularization=self.config.regularization,
                alpha=self.config.alpha,
                iterations=self.config.iterations,
                random_state=self.seed,
                # One thread: the machine is shared and small data gains nothing from more.
                num_threads=1,
            )
            model.fit(train.to_csr(), show_progress=False)
        self._set_item_factors(np.asarray(model.item_factors, dtype=np.float32))

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """User and item factors (float32, plus implicit's solver copies), the confidence matrix
        and its transpose, and the float64 factors this class keeps for scoring."""
        factors = self.config.factors
        return 48 * train.n_interactions + 16 * factors * (len(train) + 2 * train.n_items)

    def _set_item_factors(self, item_factors: np.ndarray) -> None:
        self.item_factors = item_factors
        factors = item_factors.astype(np.float64)
        self._gram = factors.T @ factors + self.config.regularization * np.eye(factors.shape[1])

    def user_factors(self, histories: list[np.ndarray]) -> np.ndarray:
        """The ALS user step for each history: (Y^T C Y + reg I)^-1 Y^T C p, with C = alpha on positives."""
        alpha = self.config.alpha
        factors = self.item_factors.astype(np.float64)
        solved = np.zeros((len(histories), factors.shape[1]))
        for row, history in enumerate(histories):
            if not len(history):
                continue
            seen = factors[np.unique(history)]
            system = self._gram + (alpha - 1.0) * (seen.T @ seen)
            solved[row] = la.solve(system, alpha * seen.sum(axis=0), assume_a="pos")
        return solved

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return (self.user_factors(histories) @ self.item_factors.T.astype(np.float64)).astype(
            np.float32
        )

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self._set_item_factors(state["item_factors"])
