"""The one contract every registered model meets, run over every name in ``MODEL_NAMES``.

A model whose module is not written yet is skipped with the reason, and picked up automatically
once it lands. Neural models run with tiny sizes and few epochs so the suite stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segue.data.interactions import Interactions
from segue.models.base import (
    MODEL_NAMES,
    FitTooLargeError,
    ModelError,
    Scorer,
    create_model,
    format_bytes,
    load_model,
    model_class,
)
from segue.ranking.topk import top_k

# Small networks and two epochs: enough to exercise fit, save and score, not to learn much.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "lstm": {"embedding_dim": 4, "hidden_size": 8, "num_layers": 1, "dense_size": 8, "epochs": 2},
    "gru4rec": {"embedding_dim": 8, "hidden_size": 8, "epochs": 2},
    "sasrec": {"embedding_dim": 8, "num_blocks": 1, "epochs": 2},
    "autoencoder": {"hidden_size": 8, "epochs": 2},
    "mult-vae": {"hidden_size": 16, "latent_size": 4, "epochs": 2},
}
# Enough training for the known-answer case on the tiny fixtures.
LEARNING_PARAMS: dict[str, dict[str, Any]] = {
    "lstm": {"num_layers": 1, "hidden_size": 32, "epochs": 30, "learning_rate": 0.01},
    "gru4rec": {"hidden_size": 32, "epochs": 30, "learning_rate": 0.01},
    "sasrec": {"embedding_dim": 16, "num_blocks": 1, "epochs": 30, "learning_rate": 0.01},
    "autoencoder": {"hidden_size": 16, "epochs": 60, "batch_size": 8, "learning_rate": 0.01},
    "mult-vae": {"hidden_size": 32, "latent_size": 8, "epochs": 60, "batch_size": 8},
}
SEED = 7


NAMES = list(MODEL_NAMES)


def _params(name: str, table: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The table's entries for ``name`` that its config knows."""
    fields = model_class(name).config_class.model_fields
    return {key: value for key, value in table.get(name, {}).items() if key in fields}


def _build(name: str, table: dict[str, dict[str, Any]] = FAST_PARAMS, seed: int = SEED) -> Scorer:
    return create_model(name, _params(name, table), seed=seed)


def _is_sequence_model(name: str) -> bool:
    return model_class(name).uses_order


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny networks run faster on one thread than on two contended ones."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data_for(checkerboard: Interactions, chain_sequences: Interactions):
    """The tiny training set that suits a model: ordered chains for sequence models."""

    def pick(name: str) -> Interactions:
        return chain_sequences if _is_sequence_model(name) else checkerboard

    return pick


def _histories(n_items: int) -> list[list[int]]:
    return [[0, 2, 4], [1], [3, 5, 7, 9], [n_items - 1, 0]]


@pytest.mark.parametrize("name", NAMES)
def test_fits_on_tiny_data_and_scores_every_item(name: str, data_for) -> None:
    data = data_for(name)
    model = _build(name)
    assert model.fit(data) is model
    scores = model.score(_histories(data.n_items))
    assert scores.shape == (4, data.n_items)
    assert scores.dtype == np.float32
    assert not np.isinf(scores).any()
    assert model.name == name


@pytest.mark.parametrize("name", NAMES)
def test_unknown_items_are_ignored_not_raised(name: str, data_for) -> None:
    data = data_for(name)
    model = _build(name).fit(data)
    with_unknown = model.score([[-1, 2, data.n_items + 5, 3]])
    np.testing.assert_array_equal(with_unknown, model.score([[2, 3]]))


@pytest.mark.parametrize("name", NAMES)
def test_empty_history_gives_a_row_of_the_right_shape(name: str, data_for) -> None:
    data = data_for(name)
    model = _build(name).fit(data)
    for history in ([], [-1, data.n_items]):
        scores = model.score([history])
        assert scores.shape == (1, data.n_items)
        assert not np.isinf(scores).any()


@pytest.mark.parametrize("name", NAMES)
def test_save_then_load_scores_identically(name: str, data_for, tmp_path: Path) -> None:
    data = data_for(name)
    model = _build(name).fit(data)
    loaded = load_model(model.save(tmp_path / name))
    assert type(loaded) is type(model)
    assert loaded.config == model.config
    assert loaded.seed == model.seed
    assert loaded.n_items == model.n_items
    assert loaded.training_history == model.training_history
    histories = _histories(data.n_items)
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trips_and_is_frozen(name: str) -> None:
    model = _build(name)
    again = create_model(name, model.config.model_dump(mode="json"), seed=SEED)
    assert again.config == model.config
    field = next(iter(type(model.config).model_fields), None)
    if field is not None:
        with pytest.raises(ValueError):
            setattr(model.config, field, getattr(model.config, field))
    with pytest.raises(ModelError):
        create_model(name, {"no_such_hyperparameter": 1})


@pytest.mark.parametrize("name", NAMES)
def test_a_batch_scores_like_each_history_alone(name: str, data_for) -> None:
    data = data_for(name)
    model = _build(name).fit(data)
    histories = _histories(data.n_items)
    batch = model.score(histories)
    for row, history in enumerate(histories):
        np.testing.assert_allclose(batch[row], model.score([history])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_the_same_scores(name: str, data_for) -> None:
    data = data_for(name)
    histories = _histories(data.n_items)
    first = _build(name).fit(data).score(histories)
    second = _build(name).fit(data).score(histories)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", NAMES)
def test_known_answer(name: str, checkerboard: Interactions, chain_sequences: Interactions) -> None:
    """User-item models: even history -> even items; sequence models: ... 3 -> 4 on a cycle."""
    if name == "most-popular":
        pytest.skip("most-popular has no personalisation: every history gets the same scores")
    model = _build(name, LEARNING_PARAMS)
    if _is_sequence_model(name):
        history = np.array([1, 2, 3])
        scores = model.fit(chain_sequences).score([history])
        assert top_k(scores, 1, [history])[0, 0] == 4
    else:
        history = np.array([0, 2, 4, 6])
        scores = model.fit(checkerboard).score([history])[0]
        unseen_even = np.setdiff1d(np.arange(0, checkerboard.n_items, 2), history)
        odd = np.arange(1, checkerboard.n_items, 2)
        assert np.nanmean(scores[unseen_even]) > np.nanmean(scores[odd])


@pytest.mark.parametrize("name", NAMES)
def test_estimates_its_fit_memory_from_sizes(name: str, data_for) -> None:
    data = data_for(name)
    model = _build(name)
    small = model.estimate_fit_bytes(data)
    larger = Interactions(data.sequences * 4, data.n_items * 50, [])
    assert isinstance(small, int) and small > 0
    assert model.estimate_fit_bytes(larger) > small


@pytest.mark.parametrize("name", NAMES)
def test_a_fit_above_the_cap_is_refused_before_it_starts(
    name: str, data_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = data_for(name)
    model = create_model(name, _params(name, FAST_PARAMS), seed=SEED, memory_limit_gb=1e-9)
    monkeypatch.setattr(model, "_fit", lambda *args: pytest.fail("the fit started"))
    with pytest.raises(FitTooLargeError) as refused:
        model.fit(data)
    message = str(refused.value)
    assert format_bytes(model.estimate_fit_bytes(data)) in message  # the estimate
    assert "training.memory_limit_gb" in message  # which limit
    assert "Instead: " in message  # and what to use instead
    with pytest.raises(ModelError, match="before fit"):
        model.score([[0]])


@pytest.mark.parametrize("name", NAMES)
def test_a_fit_above_the_memory_available_is_refused(
    name: str, data_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psutil

    class Nearly:
        available = 1024

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Nearly())
    with pytest.raises(FitTooLargeError, match="available on this machine"):
        _build(name).fit(data_for(name))
