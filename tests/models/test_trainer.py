"""The shared neural trainer: early stopping on the evaluation's cut-off, no global seeding."""

from __future__ import annotations

import numpy as np
import pytest

from segue.data.interactions import Holdout, Interactions
from segue.models.base import create_model

torch = pytest.importorskip("torch")

TRAIN = Interactions(
    [np.array(s, dtype=np.int64) for s in ([0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 0], [0, 2, 4])],
    5,
)
VALIDATION = Holdout(
    [np.array([0, 1], dtype=np.int64), np.array([2, 3], dtype=np.int64)],
    [np.array([2], dtype=np.int64), np.array([4], dtype=np.int64)],
)


@pytest.mark.parametrize("algorithm", ["gru4rec", "mult-vae"])
def test_early_stopping_follows_the_evaluation_cut_off(algorithm: str) -> None:
    params = {"epochs": 2, "batch_size": 2}
    model = create_model(algorithm, params, seed=3, validation_k=3)
    model.fit(TRAIN, VALIDATION)
    assert model.training_history, "a neural fit records its epochs"
    for record in model.training_history:
        assert "val_ndcg_at_3" in record
        assert "val_ndcg_at_10" not in record


def test_a_fit_leaves_the_global_torch_generator_alone() -> None:
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    create_model("gru4rec", {"epochs": 1, "batch_size": 2}, seed=7).fit(TRAIN, VALIDATION)
    assert torch.equal(torch.rand(4), expected)
