"""One self-contained, servable model: the scorer plus everything needed to answer requests.

Directory layout (also the artifact layout inside the logged MLflow model)::

    package.json      task, model name and metadata: dataset_fingerprint, split ({protocol, seed,
                      ...}), metrics (test), validation_metrics, config
    model/            the scorer as saved by ``Scorer.save`` (arrays + JSON, no pickles)
    items.parquet     the catalogue: item, key, artist, title, count
    users.parquet     known users' training histories: sequence (str id), item (int), position
    aliases.parquet   artist alias table for parsing free-text songs (playlists only, optional)
    reference.json    the training data's input profile the monitoring report measures drift
                      against (``segue.monitoring.drift.reference_profile``; optional)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue.data.dataset import item_texts
from segue.data.interactions import Interactions
from segue.data.song_aliases import AliasTable, artist_key
from segue.data.song_parser import item_artist_ids
from segue.models.base import CONFIG_FILE, ModelError, Scorer, load_model
from segue.ranking.postprocess import RankingCatalogue

PACKAGE_FILE = "package.json"
MODEL_DIR = "model"
ITEMS_FILE = "items.parquet"
USERS_FILE = "users.parquet"
ALIASES_FILE = "aliases.parquet"
REFERENCE_FILE = "reference.json"
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
    reference: dict[str, Any] | None = None

    @property
    def algorithm(self) -> str:
        """The model family, e.g. ``ease``."""
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
        self.scorer.save(root / MODEL_DIR)
        self.items.to_parquet(root / ITEMS_FILE, index=False)
        users = _histories_frame(self.user_histories)
        users.to_parquet(root / USERS_FILE, index=False)
        if self.aliases is not None:
            self.aliases.to_parquet(root / ALIASES_FILE, index=False)
        if self.reference is not None:
            (root / REFERENCE_FILE).write_text(json.dumps(self.reference) + "\n", encoding="utf-8")
        meta = {
            "format": PACKAGE_FORMAT,
            "task": self.task,
            "model": self.algorithm,
            **self.metadata,
        }
        (root / PACKAGE_FILE).write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return root

    @classmethod
    def load(cls, directory: str | Path) -> ModelPackage:
        root = Path(directory)
        for required in (PACKAGE_FILE, ITEMS_FILE, USERS_FILE, MODEL_DIR):
            if not (root / required).exists():
                raise PackageError(f"{root}: model package is missing {required}")
        try:
            meta = json.loads((root / PACKAGE_FILE).read_text(encoding="utf-8"))
            items = pd.read_parquet(root / ITEMS_FILE)
            users = pd.read_parquet(root / USERS_FILE)
        except (OSError, ValueError) as error:
            raise PackageError(f"{root}: model package cannot be read: {error}") from error
        scorer = load_model(root / MODEL_DIR)
        aliases_path = root / ALIASES_FILE
        aliases = pd.read_parquet(aliases_path) if aliases_path.exists() else None
        metadata = {k: v for k, v in meta.items() if k not in {"format", "task", "model"}}
        return cls(
            meta["task"],
            scorer,
            items,
            _histories_from_frame(users),
            aliases,
            metadata,
            read_reference(root),
        )


def alias_table(aliases: pd.DataFrame | None) -> AliasTable | None:
    """A package's alias table, None when it has none (movies, or no aliases learned)."""
    return None if aliases is None or aliases.empty else AliasTable.from_frame(aliases)


def artist_identifier(aliases: pd.DataFrame | None) -> Callable[[str], str]:
    """How a package compares artist names: as the parser keys them, with its alias table."""
    return partial(artist_key, aliases=alias_table(aliases))


def ranking_catalogue(package: ModelPackage) -> RankingCatalogue:
    """What ``segue.ranking.postprocess`` needs to rank a package's items: the server and the
    pyfunc model both rank through this one catalogue."""
    table = alias_table(package.aliases)
    texts = item_texts(package.items)
    return RankingCatalogue.from_items(
        package.items.sort_values("item", kind="stable"),
        package.user_histories.values(),
        artist_ids=item_artist_ids(texts.keys, texts.artists, table),
        identify_artist=partial(artist_key, aliases=table),
    )


def locate_saved_scorer(directory: str | Path) -> tuple[Path, Path | None]:
    """The ``Scorer.save`` directory in ``directory`` and the package holding it (None when the
    scorer was saved alone): ``directory`` may be either a package or a saved scorer."""
    root = Path(directory)
    if (root / CONFIG_FILE).exists():
        package = root.parent if (root.parent / ITEMS_FILE).exists() else None
        return root, package
    if (root / MODEL_DIR / CONFIG_FILE).exists():
        return root / MODEL_DIR, root
    raise ModelError(f"{root}: neither a saved model nor a model package")


def read_package_metadata(directory: str | Path) -> dict[str, Any]:
    """The ``package.json`` of a package directory, ``{}`` when it has none."""
    path = Path(directory) / PACKAGE_FILE
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def read_reference(directory: str | Path) -> dict[str, Any] | None:
    """The ``reference.json`` of a package directory, None when it has none (older packages)."""
    path = Path(directory) / REFERENCE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PackageError(f"{path}: cannot be read: {error}") from error


def read_catalogue(directory: str | Path) -> pd.DataFrame | None:
    """The catalogue (item, key, artist, title, count) of a package directory, None without one."""
    path = Path(directory) / ITEMS_FILE
    return pd.read_parquet(path) if path.exists() else None


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
