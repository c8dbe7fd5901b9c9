"""One self-contained, servable model: the scorer plus everything needed to answer requests.

Directory layout (also the artifact layout inside the logged MLflow model)::

    package.json      task, model name and metadata: dataset_fingerprint, split ({protocol, seed,
                      ...}), metrics (test), validation_metrics, config
    model/            the scorer as saved by ``Scorer.save`` (arrays + JSON, no pickles)
    items.parquet     the catalogue: item, key, artist, title, count
    users.parquet     known users' training histories: sequence (str id), item (int), position
    aliases.parquet   artist alias table for parsing free-text songs (playlists only, optional)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue.data.interactions import Interactions
from segue.models.base import Scorer, load_model

PACKAGE_FILE = "package.json"
PACKAGE_FORMAT = 1


class PackageError(ValueError):
    """A package directory is missing a file or cannot be read."""


@dataclass
class ModelPackage:
    """A fitted scorer, its catalogue and known users, and how it was made and measured."""

    task: str
    scorer: Scorer
    items: pd.DataFrame
    user_histories: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: pd.DataFrame | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.scorer.name

    @property
    def dataset_fingerprint(self) -> str:
        return str(self.metadata.get("dataset_fingerprint", ""))

    @property
    def protocol(self) -> str:
        """The split protocol its ``metrics`` were measured with (``metadata["split"]``)."""
        split = self.metadata.get("split", {})
        return str(split.get("protocol", "")) if isinstance(split, dict) else ""

    @property
    def metrics(self) -> dict[str, float]:
        """Test metrics, flat (``ndcg_at_10``...): what the promotion gate compares."""
        return dict(self.metadata.get("metrics", {}))

    def save(self, directory: str | Path) -> Path:
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        self.scorer.save(root / "model")
        self.items.to_parquet(root / "items.parquet", index=False)
        users = _histories_frame(self.user_histories)
        users.to_parquet(root / "users.parquet", index=False)
        if self.aliases is not None:
            self.aliases.to_parquet(root / "aliases.parquet", index=False)
        meta = {
            "format": PACKAGE_FORMAT,
            "task": self.task,
            "model": self.model_name,
            **self.metadata,
        }
        (root / PACKAGE_FILE).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return root

    @classmethod
    def load(cls, directory: str | Path) -> ModelPackage:
        root = Path(directory)
        for required in (PACKAGE_FILE, "items.parquet", "users.parquet", "model"):
            if not (root / required).exists():
                raise PackageError(f"{root}: model package is missing {required}")
        try:
            meta = json.loads((root / PACKAGE_FILE).read_text(encoding="utf-8"))
            items = pd.read_parquet(root / "items.parquet")
            users = pd.read_parquet(root / "users.parquet")
        except (OSError, ValueError) as error:
            raise PackageError(f"{root}: model package cannot be read: {error}") from error
        scorer = load_model(root / "model")
        aliases_path = root / "aliases.parquet"
        aliases = pd.read_parquet(aliases_path) if aliases_path.exists() else None
        metadata = {k: v for k, v in meta.items() if k not in {"format", "task", "model"}}
        return cls(meta["task"], scorer, items, _histories_from_frame(users), aliases, metadata)


def histories_by_id(interactions: Interactions) -> dict[str, np.ndarray]:
    """Known users' (or playlists') histories keyed by their id."""
    return dict(zip(interactions.sequence_ids, interactions.sequences, strict=True))


def _histories_frame(histories: dict[str, np.ndarray]) -> pd.DataFrame:
    ids = list(histories)
    lengths = [len(histories[i]) for i in ids]
    return pd.DataFrame(
        {
            "sequence": np.repeat(np.array(ids, dtype=object), lengths),
            "item": np.concatenate([histories[i] for i in ids]) if ids else np.empty(0, np.int64),
            "position": np.concatenate([np.arange(n) for n in lengths])
            if ids
            else np.empty(0, np.int64),
        }
    )


def _histories_from_frame(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    if frame.empty:
        return {}
    frame = frame.sort_values(["sequence", "position"], kind="stable")
    return {
        str(key): group["item"].to_numpy(np.int64)
        for key, group in frame.groupby("sequence", sort=False)
    }
