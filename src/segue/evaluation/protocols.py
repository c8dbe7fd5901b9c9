"""Evaluation protocols: by name, how to split a dataset and how to score a model on the cases.

- ``random-holdout``: the original design's protocol for user-items. Every interaction in the
  dataset is a positive; N random items per user are test targets, N more validation targets;
  full ranking over the catalogue with the user's other items excluded.
- ``leave-last-one-out``: time-ordered histories (ratings by timestamp, playlists by position);
  the last item is the test target, the one before it the validation target.
- ``playlist-holdout``: the next-song protocol. Whole playlists are held out; each is scored at
  every position (history = the prefix, target = the next song) and at its last position. The two
  are reported side by side: ``ndcg_at_10`` (every position) and ``last_ndcg_at_10``. With
  ``evaluation.positions_per_sequence`` above 0, a seeded sample of that many positions per
  playlist (the last always among them) stands in for every position: large catalogues then
  cost a fixed number of cases per playlist, and the last-position figures are unchanged.
- ``temporal``: one global time cut-off; users' later items are the targets.

``leaky`` exists only to reproduce the original autoencoder figure: the model also trains on the
held-out targets. It is refused for every protocol but ``random-holdout`` and renames the
protocol ``random-holdout-leaky`` wherever it is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from segue.data.dataset import Dataset
from segue.data.interactions import Holdout, Interactions, Split
from segue.data.splits import (
    last_position_indices,
    leak_holdout_targets,
    split_by_playlist,
    split_leave_last,
    split_random_holdout,
    split_temporal,
)
from segue.evaluation.evaluator import ItemScorer, rank_holdout, ranked_list_metrics
from segue.settings import EvaluationSettings

LAST_POSITION_PREFIX = "last_"
LEAKY_SUFFIX = "-leaky"


class ProtocolError(ValueError):
    """An unknown protocol, or a protocol the dataset cannot support."""


SplitBuilder = Callable[[Dataset, EvaluationSettings], Split]


@dataclass(frozen=True)
class Protocol:
    """A named way to split a dataset and score a model on the held-out cases."""

    name: str
    summary: str
    build_split: SplitBuilder
    scores_last_position: bool = False

    def evaluate(
        self,
        scorer: ItemScorer,
        holdout: Holdout,
        cutoffs: Sequence[int],
        *,
        item_counts: np.ndarray | None = None,
        progress: bool = False,
    ) -> dict[str, float]:
        """Metrics of ``scorer`` on ``holdout``; empty when there are no cases.

        Every case is scored once; the last-position metrics reuse the lists of the last cases.
        """
        if not len(holdout):
            return {}
        ranked = rank_holdout(scorer, holdout, max(cutoffs), progress=progress)
        metrics = ranked_list_metrics(
            ranked, holdout.targets, cutoffs, scorer.n_items, item_counts=item_counts
        )
        if self.scores_last_position:
            last_cases = last_position_indices(holdout)
            last = ranked_list_metrics(
                [ranked[i] for i in last_cases],
                [holdout.targets[i] for i in last_cases],
                cutoffs,
                scorer.n_items,
                item_counts=item_counts,
            )
            metrics.update({LAST_POSITION_PREFIX + key: value for key, value in last.items()})
        return metrics


def history_order(dataset: Dataset) -> Literal["position", "timestamp"]:
    """Ratings with a timestamp on every row are ordered by time; everything else by position."""
    timestamps = dataset.interactions["timestamp"]
    if dataset.kind == "ratings" and len(timestamps) and timestamps.notna().all():
        return "timestamp"
    return "position"


def timed_sequences(dataset: Dataset) -> tuple[Interactions, list[np.ndarray]]:
    """Time-ordered histories and, aligned with them, each interaction's timestamp."""
    frame = dataset.interactions
    if not len(frame) or frame["timestamp"].isna().any():
        raise ProtocolError(
            f"{dataset.directory}: the temporal protocol needs a timestamp on every interaction"
        )
    frame = frame.sort_values(["sequence", "timestamp", "position"], kind="stable")
    sizes = frame.groupby("sequence", sort=False).size()
    cuts = np.cumsum(sizes.to_numpy())[:-1]
    items = np.split(frame["item"].to_numpy(np.int64), cuts)
    times = np.split(frame["timestamp"].to_numpy(np.float64), cuts)
    ids = [str(i) for i in sizes.index]
    return Interactions(items, dataset.n_items, ids), times


def _random_holdout(dataset: Dataset, evaluation: EvaluationSettings) -> Split:
    return split_random_holdout(
        dataset.sequences(history_order(dataset)),
        n=evaluation.holdout_per_user,
        seed=evaluation.seed,
    )


def _leave_last_one_out(dataset: Dataset, evaluation: EvaluationSettings) -> Split:
    return split_leave_last(dataset.sequences(history_order(dataset)), n=1, seed=evaluation.seed)


def _playlist_holdout(dataset: Dataset, evaluation: EvaluationSettings) -> Split:
    return split_by_playlist(
        dataset.sequences(history_order(dataset)),
        validation_fraction=evaluation.validation_fraction,
        test_fraction=evaluation.test_fraction,
        seed=evaluation.seed,
        positions_per_sequence=evaluation.positions_per_sequence,
    )


def _temporal(dataset: Dataset, evaluation: EvaluationSettings) -> Split:
    interactions, timestamps = timed_sequences(dataset)
    return split_temporal(
        interactions,
        timestamps,
        validation_fraction=evaluation.validation_fraction,
        test_fraction=evaluation.test_fraction,
        seed=evaluation.seed,
    )


PROTOCOLS: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            "random-holdout",
            "N random items per user held out (the original design), full ranking",
            _random_holdout,
        ),
        Protocol(
            "leave-last-one-out",
            "each time-ordered history's last item is the target",
            _leave_last_one_out,
        ),
        Protocol(
            "playlist-holdout",
            "held-out playlists scored at every position and at the last one",
            _playlist_holdout,
            scores_last_position=True,
        ),
        Protocol(
            "temporal",
            "one global time cut-off; later items are the targets",
            _temporal,
        ),
    )
}
PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)
DEFAULT_PROTOCOLS: dict[str, str] = {
    "next-song": "playlist-holdout",
    "user-items": "random-holdout",
}


def default_protocol(task: str) -> str:
    if task not in DEFAULT_PROTOCOLS:
        raise ProtocolError(
            f"unknown task {task!r}; expected one of {', '.join(DEFAULT_PROTOCOLS)}"
        )
    return DEFAULT_PROTOCOLS[task]


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; a ``-leaky`` name resolves to its honest base protocol."""
    base = name.removesuffix(LEAKY_SUFFIX)
    if base not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[base]


def is_leaky(protocol_name: str) -> bool:
    return protocol_name.endswith(LEAKY_SUFFIX)


def build_split(
    dataset: Dataset, protocol_name: str, evaluation: EvaluationSettings, *, leaky: bool = False
) -> Split:
    """The split ``protocol_name`` makes of ``dataset``; ``leaky`` only for ``random-holdout``."""
    protocol = get_protocol(protocol_name)
    leaky = leaky or is_leaky(protocol_name)
    if leaky and protocol.name != "random-holdout":
        raise ProtocolError(
            "leaky training exists only to reproduce the original design's random-holdout figure"
        )
    try:
        split = protocol.build_split(dataset, evaluation)
    except ValueError as error:
        raise ProtocolError(f"{dataset.directory}: {protocol.name}: {error}") from error
    if not len(split.test):
        raise ProtocolError(
            f"{dataset.directory}: {protocol.name} found no test cases; the dataset is too small"
        )
    return leak_holdout_targets(split) if leaky else split
