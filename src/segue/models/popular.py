"""MostPopular: every history gets the same scores, the items' training popularity."""

from __future__ import annotations

import numpy as np

from segue.data.interactions import Holdout, Interactions
from segue.models.base import Scorer


class MostPopularScorer(Scorer):
    """The baseline every other model must beat; also the serving fallback."""

    name = "most-popular"

    def _fit(self, train: Interactions, validation: Holdout | None) -> None:
        counts = train.item_counts().astype(np.float32)
        self.popularity = counts / max(float(counts.max(initial=0.0)), 1.0)

    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(histories), self.n_items)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self.popularity = state["popularity"]
