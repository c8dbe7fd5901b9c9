"""The one contract every model meets, and the name -> class registry.

A model *scores*: given ordered histories of item indices it returns one score per catalogue item
(NaN where it cannot score). Excluding seen items, ban lists and top-K happen once, in
``segue.ranking`` and ``segue.evaluation``. Models save as arrays plus JSON, never pickles.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from segue.data.interactions import Holdout, Interactions, as_history

TASKS: tuple[str, ...] = ("next-song", "user-items")

# Lazy registry: importing segue.models must not import torch.
_MODEL_PATHS: dict[str, str] = {
    "most-popular": "segue.models.popular:MostPopularScorer",
    "markov": "segue.models.markov:MarkovScorer",
    "session-knn": "segue.models.session_knn:SessionKnnScorer",
    "lstm": "segue.models.lstm:LstmScorer",
    "gru4rec": "segue.models.gru4rec:Gru4RecScorer",
    "sasrec": "segue.models.sasrec:SasRecScorer",
    "item-knn": "segue.models.item_knn:ItemKnnScorer",
    "ease": "segue.models.ease:EaseScorer",
    "als": "segue.models.als:AlsScorer",
    "autoencoder": "segue.models.autoencoder:AutoencoderScorer",
    "mult-vae": "segue.models.mult_vae:MultVaeScorer",
}
MODEL_NAMES: tuple[str, ...] = tuple(_MODEL_PATHS)
CONFIG_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"


class ModelError(ValueError):
    """An unknown model name, a bad config, or a saved model that cannot be read."""


class ModelConfig(BaseModel):
    """Base of every model's frozen, validated hyperparameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Scorer(ABC):
    """Scores every catalogue item for each history. Subclasses set the class attributes."""

    name: ClassVar[str]
    tasks: ClassVar[frozenset[str]] = frozenset(TASKS)
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    uses_order: ClassVar[bool] = False
    # Closed-form models are refitted on train + validation items before the test evaluation
    # (validation items are not test items); models that early-stop on validation are not.
    refit_with_validation: ClassVar[bool] = True

    def __init__(
        self, config: ModelConfig | None = None, *, seed: int = 0, validation_k: int = 10
    ) -> None:
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise ModelError(f"{self.name}: expected {self.config_class.__name__}")
        self.seed = seed
        # The cut-off neural models early-stop on (validation NDCG@k): the evaluation's k.
        self.validation_k = validation_k
        self.n_items = 0
        # Per-epoch records ({"epoch", "loss", "val_ndcg_at_10", ...}) for neural models.
        self.training_history: list[dict[str, float]] = []

    # -- what subclasses implement -------------------------------------------------------------
    @abstractmethod
    def _fit(self, train: Interactions, validation: Holdout | None) -> None: ...

    @abstractmethod
    def _score(self, histories: list[np.ndarray]) -> np.ndarray:
        """Scores (len(histories), n_items); histories hold only known item indices."""

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]:
        """Every fitted array, by name, for saving."""

    @abstractmethod
    def _restore(self, state: dict[str, np.ndarray]) -> None: ...

    # -- the public contract -------------------------------------------------------------------
    def fit(self, train: Interactions, validation: Holdout | None = None) -> Self:
        if train.n_items <= 0:
            raise ModelError(f"{self.name}: cannot fit on an empty catalogue")
        self.n_items = train.n_items
        self.training_history = []
        self._fit(train, validation)
        return self

    def score(self, histories: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
        """Float32 scores (batch, n_items). Unknown indices (-1 or out of range) are ignored."""
        if self.n_items <= 0:
            raise ModelError(f"{self.name}: score() called before fit() or load()")
        cleaned = [as_history(history, self.n_items) for history in histories]
        if not cleaned:
            return np.empty((0, self.n_items), dtype=np.float32)
        scores = np.asarray(self._score(cleaned), dtype=np.float32)
        if scores.shape != (len(cleaned), self.n_items):
            raise ModelError(
                f"{self.name}: scored shape {scores.shape}, expected {(len(cleaned), self.n_items)}"
            )
        return scores

    def save(self, directory: str | Path) -> Path:
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        meta = {
            "name": self.name,
            "config": self.config.model_dump(mode="json"),
            "seed": self.seed,
            "n_items": self.n_items,
            "training_history": self.training_history,
        }
        (root / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        np.savez(root / ARRAYS_FILE, **self._state())
        return root

    @classmethod
    def load(cls, directory: str | Path) -> Scorer:
        return load_model(directory)

    def describe(self) -> dict[str, Any]:
        """Name and hyperparameters, flat, for MLflow params."""
        return {"model": self.name, "seed": self.seed, **self.config.model_dump(mode="json")}


def model_class(name: str) -> type[Scorer]:
    if name not in _MODEL_PATHS:
        raise ModelError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    module_name, class_name = _MODEL_PATHS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_model(
    name: str, params: dict[str, Any] | None = None, *, seed: int = 0, validation_k: int = 10
) -> Scorer:
    """A fresh model from its name and a (possibly partial) hyperparameter table."""
    cls = model_class(name)
    try:
        config = cls.config_class(**(params or {}))
    except ValueError as error:
        raise ModelError(f"{name}: invalid hyperparameters: {error}") from error
    return cls(config, seed=seed, validation_k=validation_k)


def load_model(directory: str | Path) -> Scorer:
    """Load a model saved by ``Scorer.save`` (arrays with allow_pickle=False, config as JSON)."""
    root = Path(directory)
    for required in (CONFIG_FILE, ARRAYS_FILE):
        if not (root / required).exists():
            raise ModelError(f"{root}: saved model is missing {required}")
    try:
        meta = json.loads((root / CONFIG_FILE).read_text(encoding="utf-8"))
        model = create_model(meta["name"], meta["config"], seed=int(meta["seed"]))
        with np.load(root / ARRAYS_FILE, allow_pickle=False) as arrays:
            state = {key: arrays[key] for key in arrays.files}
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"{root}: saved model cannot be read: {error}") from error
    model.n_items = int(meta["n_items"])
    model.training_history = list(meta.get("training_history", []))
    model._restore(state)
    return model
