"""The one contract every model meets, and the name -> class registry.

A model *scores*: given ordered histories of item indices it returns one score per catalogue item
(NaN where it cannot score). Excluding seen items, ban lists and top-K happen once, in
``segue.ranking`` and ``segue.evaluation``. Models save as arrays plus JSON, never pickles.

A model also knows its size: before ``fit`` allocates anything it estimates the memory the fit
will need (``estimate_fit_bytes``) and refuses with a ``FitTooLargeError`` when that is above the
memory the machine has available or the configured cap (``training.memory_limit_gb``).
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
from segue.evaluation.evaluator import SCORES_PER_BATCH
from segue.ranking.base_rows import BaseRows

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
    "edlae": "segue.models.edlae:EdlaeScorer",
    "rp3beta": "segue.models.rp3beta:Rp3BetaScorer",
    "als": "segue.models.als:AlsScorer",
    "autoencoder": "segue.models.autoencoder:AutoencoderScorer",
    "mult-vae": "segue.models.mult_vae:MultVaeScorer",
}
MODEL_NAMES: tuple[str, ...] = tuple(_MODEL_PATHS)
CONFIG_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
GIGABYTE = 1024**3
# Evaluation scores this many cases per model call (the neural trainer validates the same way).
SCORING_BATCH = 512


class ModelError(ValueError):
    """An unknown model name, a bad config, or a saved model that cannot be read."""


class FitTooLargeError(ModelError):
    """A fit whose estimated memory is above what the machine has or the configured cap."""

    def __init__(self, message: str, *, estimate_bytes: int, limit_bytes: int) -> None:
        super().__init__(message)
        self.estimate_bytes = estimate_bytes
        self.limit_bytes = limit_bytes


def format_bytes(count: float) -> str:
    """1.5 GB, 380 MB, 12 kB: how the memory guard speaks."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if count >= size:
            return f"{count / size:,.1f} {unit}"
    return f"{int(count)} B"


def trained_parameter_bytes(parameters: int) -> int:
    """Memory of ``parameters`` float32 weights trained with Adam: weights, gradients, 2 moments."""
    return 16 * parameters


def scoring_bytes(n_items: int) -> int:
    """Scoring one evaluation batch against the catalogue (validation does it in the fit): the
    scores and the top-K selection's scratch, about three float32 arrays of the batch."""
    rows = max(1, min(SCORING_BATCH, SCORES_PER_BATCH // max(n_items, 1)))
    return 12 * rows * n_items


def network_fit_bytes(
    *, parameters: int, logits: int, n_items: int, n_interactions: int, example_bytes: int = 16
) -> int:
    """A neural fit: trained parameters, one batch's ``logits`` entries (float32 values, their
    softmax and gradient), the training examples and the validation scoring of a batch."""
    return (
        trained_parameter_bytes(parameters)
        + 12 * logits
        + example_bytes * n_interactions
        + scoring_bytes(n_items)
    )


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
        self,
        config: ModelConfig | None = None,
        *,
        seed: int = 0,
        validation_k: int = 10,
        memory_limit_gb: float = 0.0,
    ) -> None:
        self.config = config if config is not None else self.config_class()
        if not isinstance(self.config, self.config_class):
            raise ModelError(f"{self.name}: expected {self.config_class.__name__}")
        self.seed = seed
        # The cut-off neural models early-stop on (validation NDCG@k): the evaluation's k.
        self.validation_k = validation_k
        # training.memory_limit_gb: a fit estimated above it is refused (0 = the machine's).
        self.memory_limit_gb = memory_limit_gb
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

    def estimate_fit_bytes(self, train: Interactions) -> int:
        """Memory ``fit(train)`` will need at its peak, estimated from sizes alone (no allocation).

        The default suits models whose arrays grow with the catalogue and the interactions (a
        few vectors per item, a sparse matrix of the pairs): 64 bytes per item and per
        interaction. Models with dense or per-pair work arrays override it.
        """
        return 64 * (train.n_items + train.n_interactions)

    def fit_alternative(self, train: Interactions) -> str:
        """What to use instead when the fit is too large (said in the refusal)."""
        return (
            "fit on fewer items (raise data.min_item_count) or use a lighter model "
            "(item-knn for user-items, markov for next-song)"
        )

    # -- the public contract -------------------------------------------------------------------
    def fit(self, train: Interactions, validation: Holdout | None = None) -> Self:
        if train.n_items <= 0:
            raise ModelError(f"{self.name}: cannot fit on an empty catalogue")
        self.check_fit_memory(train)
        self.n_items = train.n_items
        self.training_history = []
        self._fit(train, validation)
        return self

    def check_fit_memory(self, train: Interactions) -> None:
        """Refuse (``FitTooLargeError``) a fit estimated above the memory available or the cap."""
        import psutil  # ~80 ms to import; only a fit needs it

        estimate = int(self.estimate_fit_bytes(train))
        available = int(psutil.virtual_memory().available)
        limit, source = available, "available on this machine"
        cap = int(self.memory_limit_gb * GIGABYTE)
        if 0 < cap < available:
            limit, source = cap, "cap training.memory_limit_gb"
        if estimate <= limit:
            return
        raise FitTooLargeError(
            f"{self.name}: fitting {train.n_items:,} items and {train.n_interactions:,} "
            f"interactions needs about {format_bytes(estimate)}, above the {format_bytes(limit)} "
            f"{source}. Instead: {self.fit_alternative(train)}.",
            estimate_bytes=estimate,
            limit_bytes=limit,
        )

    def score(self, histories: Sequence[Sequence[int] | np.ndarray]) -> np.ndarray:
        """Float32 scores (batch, n_items), a fresh array the caller may change. Unknown indices
        (-1 or out of range) are ignored."""
        cleaned = self._known_histories(histories)
        if not cleaned:
            return np.empty((0, self.n_items), dtype=np.float32)
        scores = np.asarray(self._score(cleaned), dtype=np.float32)
        if scores.shape != (len(cleaned), self.n_items):
            raise ModelError(
                f"{self.name}: scored shape {scores.shape}, expected {(len(cleaned), self.n_items)}"
            )
        return scores

    def score_base_rows(self, histories: Sequence[Sequence[int] | np.ndarray]) -> BaseRows | None:
        """The rows of ``score`` as shared base rows changed at a few cells, for a model whose
        rows are that (ranked then without reading whole rows); None, at no cost, for others."""
        return None

    def summed_weight_rows(self) -> np.ndarray | None:
        """The float32 (n_items, n_items) matrix W, C-ordered, when ``score(history)`` is the sum
        of W's rows over the history's distinct items added in ascending order: serving then
        scores and ranks a list in one compiled call. None for other models."""
        return None

    def _known_histories(self, histories: Sequence[Sequence[int] | np.ndarray]) -> list[np.ndarray]:
        """The histories without unknown indices, once the model is fitted."""
        if self.n_items <= 0:
            raise ModelError(f"{self.name}: score() called before fit() or load()")
        return [as_history(history, self.n_items) for history in histories]

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
    name: str,
    params: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    validation_k: int = 10,
    memory_limit_gb: float = 0.0,
) -> Scorer:
    """A fresh model from its name and a (possibly partial) hyperparameter table.

    ``memory_limit_gb`` caps what its fit may need (0 = the memory the machine has available).
    """
    cls = model_class(name)
    try:
        config = cls.config_class(**(params or {}))
    except ValueError as error:
        raise ModelError(f"{name}: invalid hyperparameters: {error}") from error
    return cls(config, seed=seed, validation_k=validation_k, memory_limit_gb=memory_limit_gb)


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
            # C order, whichever order an array was saved in: scoring reads whole rows.
            state = {key: np.asarray(arrays[key], order="C") for key in arrays.files}
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"{root}: saved model cannot be read: {error}") from error
    model.n_items = int(meta["n_items"])
    model.training_history = list(meta.get("training_history", []))
    model._restore(state)
    return model
