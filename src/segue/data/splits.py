"""Train / validation / test splits, deterministic for a seed, each returning a ``Split``.

Every splitter keeps the histories a model sees apart from the targets it is scored on: a target
never appears in the training sequences, and a case's history never contains its own targets.

- ``split_by_playlist``: whole playlists go to train, validation or test (seeded fractions); the
  held-out playlists become cases through a case builder (every position, a seeded sample of
  positions that always holds the last one, or the last one alone).
- ``split_leave_last``: per sequence, test = the last N items, validation = the N before them;
  training keeps what comes before both.
- ``split_random_holdout``: the original design's protocol, N random items per user as test
  targets and N more as validation targets; the model trains on the rest.
- ``split_temporal``: one global time cut-off for every user; later items become targets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from segue.data.interactions import Holdout, Interactions, Split

CaseBuilder = Callable[[Interactions], Holdout]


def every_position_cases(sequences: Interactions) -> Holdout:
    """One case per position 1..n-1 of every sequence: history = the prefix, target = next item.

    Cases of one sequence are consecutive and in position order, and carry the sequence's id, so
    ``last_position_cases`` can pick each sequence's final case back out.
    """
    histories: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    ids: list[str] = []
    for index, sequence in enumerate(sequences.sequences):
        sequence_id = sequences.sequence_ids[index] if sequences.sequence_ids else str(index)
        for position in range(1, len(sequence)):
            histories.append(sequence[:position])
            targets.append(sequence[position : position + 1])
            ids.append(sequence_id)
    return Holdout(histories, targets, ids)


def sampled_position_cases(sequences: Interactions, per_sequence: int, seed: int) -> Holdout:
    """Like ``every_position_cases``, but at most ``per_sequence`` positions of each sequence.

    The last position is always among them (so ``last_position_cases`` and the refit on
    validation playlists see every sequence whole); the others are drawn without replacement,
    seeded, and kept in position order. ``per_sequence`` 0 means every position.
    """
    if per_sequence < 0:
        raise ValueError("per_sequence must be >= 0 (0 = every position)")
    if per_sequence == 0:
        return every_position_cases(sequences)
    rng = np.random.default_rng(seed)
    cases = _Cases()
    for sequence, sequence_id in zip(sequences.sequences, _sequence_ids(sequences), strict=True):
        last = len(sequence) - 1
        if last < 1:
            continue
        earlier = np.arange(1, last)
        if len(earlier) >= per_sequence:
            earlier = np.sort(rng.choice(earlier, size=per_sequence - 1, replace=False))
        for position in [*earlier.tolist(), last]:
            cases.add(sequence[:position], sequence[position : position + 1], sequence_id)
    return cases.holdout()


def position_sampler(per_sequence: int, seed: int) -> CaseBuilder:
    """The case builder of ``evaluation.positions_per_sequence``: every position when 0."""
    if per_sequence == 0:
        return every_position_cases
    return lambda sequences: sampled_position_cases(sequences, per_sequence, seed)


def last_position_indices(holdout: Holdout) -> list[int]:
    """Indices of the final case of each sequence id (cases of one id consecutive, in order)."""
    if not holdout.sequence_ids:
        raise ValueError("last_position_cases needs cases that carry their sequence ids")
    return [
        index
        for index, sequence_id in enumerate(holdout.sequence_ids)
        if index + 1 == len(holdout) or holdout.sequence_ids[index + 1] != sequence_id
    ]


def last_position_cases(holdout: Holdout) -> Holdout:
    """The final case of each sequence id (cases of one id must be consecutive, in order)."""
    keep = last_position_indices(holdout)
    return Holdout(
        [holdout.histories[i] for i in keep],
        [holdout.targets[i] for i in keep],
        [holdout.sequence_ids[i] for i in keep],
    )


def _held_out_parts(
    count: int, validation_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded validation and test indices out of ``count``; each gets >= 1 when it can."""
    order = np.random.default_rng(seed).permutation(count)
    n_test = round(count * test_fraction)
    n_validation = round(count * validation_fraction)
    if count >= 3:
        n_test, n_validation = max(n_test, 1), max(n_validation, 1)
    return np.sort(order[n_test : n_test + n_validation]), np.sort(order[:n_test])


class _Cases:
    """Evaluation cases collected one sequence at a time, then frozen into a ``Holdout``."""

    def __init__(self) -> None:
        self.histories: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.ids: list[str] = []

    def add(self, history: np.ndarray, targets: np.ndarray, sequence_id: str) -> None:
        self.histories.append(history)
        self.targets.append(targets)
        self.ids.append(sequence_id)

    def holdout(self) -> Holdout:
        return Holdout(self.histories, self.targets, self.ids)


def _sequence_ids(interactions: Interactions) -> list[str]:
    """Each sequence's id, or its position when the sequences have none."""
    if interactions.sequence_ids:
        return list(interactions.sequence_ids)
    return [str(index) for index in range(len(interactions))]


def _per_sequence_split(
    train: Interactions,
    validation: _Cases,
    test: _Cases,
    protocol: str,
    seed: int,
    splitter: str,
    **details: Any,
) -> Split:
    """A split whose cases come from each sequence, described the same way by every splitter."""
    description = {
        "splitter": splitter,
        **details,
        "train_sequences": len(train),
        "train_interactions": train.n_interactions,
        "validation_cases": len(validation.targets),
        "test_cases": len(test.targets),
    }
    return Split(train, validation.holdout(), test.holdout(), protocol, seed, description)


def split_by_playlist(
    interactions: Interactions,
    *,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    positions_per_sequence: int = 0,
    build_cases: CaseBuilder | None = None,
    protocol: str = "playlist-holdout",
) -> Split:
    """Whole playlists to train, validation or test; held-out ones become cases via ``build_cases``.

    Without ``build_cases``, a held-out playlist is scored at every position, or at
    ``positions_per_sequence`` seeded positions (its last one among them) when that is above 0.
    Playlists with fewer than two items cannot give a case and always stay in train.
    """
    if not 0 < validation_fraction < 1 or not 0 < test_fraction < 1:
        raise ValueError("validation_fraction and test_fraction must be in (0, 1)")
    lengths = np.array([len(s) for s in interactions.sequences], dtype=np.int64)
    eligible = np.flatnonzero(lengths >= 2)
    validation_part, test_part = _held_out_parts(
        len(eligible), validation_fraction, test_fraction, seed
    )
    held_out = set(eligible[validation_part].tolist()) | set(eligible[test_part].tolist())
    train_indices = [i for i in range(len(interactions)) if i not in held_out]
    if build_cases is None:
        build_cases = position_sampler(positions_per_sequence, seed)
    validation = build_cases(interactions.subset(eligible[validation_part].tolist()))
    test = build_cases(interactions.subset(eligible[test_part].tolist()))
    train = interactions.subset(train_indices)
    description = {
        "splitter": "by-playlist",
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "train_sequences": len(train),
        "train_interactions": train.n_interactions,
        "validation_sequences": len(validation_part),
        "test_sequences": len(test_part),
        "validation_cases": len(validation),
        "test_cases": len(test),
        "too_short_kept_in_train": int(len(lengths) - len(eligible)),
    }
    if positions_per_sequence:
        # Only when sampling: splits made before the option existed keep their description.
        description["positions_per_sequence"] = positions_per_sequence
    return Split(train, validation, test, protocol, seed, description)


def split_leave_last(
    interactions: Interactions,
    *,
    n: int = 1,
    seed: int = 0,
    protocol: str = "leave-last-one-out",
) -> Split:
    """Per sequence: test targets = last ``n``, validation targets = the ``n`` before them.

    Test histories are everything before the test targets (validation items included: they are
    the user's past by then); validation histories and the training sequence are everything
    before the validation targets. A sequence needs at least ``2n + 1`` items to give cases; a
    shorter one stays in train whole. The split has no randomness; ``seed`` is recorded only.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    train_sequences: list[np.ndarray] = []
    validation, test = _Cases(), _Cases()
    kept_whole = 0
    for sequence, sequence_id in zip(
        interactions.sequences, _sequence_ids(interactions), strict=True
    ):
        if len(sequence) < 2 * n + 1:
            train_sequences.append(sequence)
            kept_whole += 1
            continue
        cut = len(sequence) - 2 * n
        train_sequences.append(sequence[:cut])
        validation.add(sequence[:cut], sequence[cut : cut + n], sequence_id)
        test.add(sequence[: cut + n], sequence[cut + n :], sequence_id)
    train = Interactions(train_sequences, interactions.n_items, list(interactions.sequence_ids))
    return _per_sequence_split(
        train,
        validation,
        test,
        protocol,
        seed,
        "leave-last",
        n=n,
        too_short_kept_in_train=kept_whole,
    )


def split_random_holdout(
    interactions: Interactions,
    *,
    n: int = 10,
    seed: int = 42,
    protocol: str = "random-holdout",
) -> Split:
    """The original design's split: ``n`` random items per user as test targets.

    From what remains, ``n`` more random items become validation targets (early stopping and
    tuning); the model trains on the rest. Test histories are everything but the test targets;
    validation histories are the training items. Users with ``n`` items or fewer cannot spare any
    and stay in train only; users with ``n + 1`` to ``2n`` items give a test case but no
    validation case, so at least one item always remains as history. Order inside every history
    is the sequence's own order.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    train_sequences: list[np.ndarray] = []
    validation, test = _Cases(), _Cases()
    train_only = test_only = 0
    for sequence, sequence_id in zip(
        interactions.sequences, _sequence_ids(interactions), strict=True
    ):
        items = np.unique(sequence)
        if len(items) <= n:
            train_sequences.append(sequence)
            train_only += 1
            continue
        shuffled = rng.permutation(items)
        test_items = shuffled[:n]
        validation_items = shuffled[n : 2 * n] if len(items) > 2 * n else shuffled[:0]
        history = sequence[~np.isin(sequence, test_items)]
        training = history[~np.isin(history, validation_items)]
        train_sequences.append(training)
        test.add(history, np.sort(test_items), sequence_id)
        if len(validation_items):
            validation.add(training, np.sort(validation_items), sequence_id)
        else:
            test_only += 1
    train = Interactions(train_sequences, interactions.n_items, list(interactions.sequence_ids))
    return _per_sequence_split(
        train,
        validation,
        test,
        protocol,
        seed,
        "random-holdout",
        n=n,
        too_short_kept_in_train=train_only,
        test_only_no_validation=test_only,
    )


def with_validation(split: Split) -> Interactions:
    """Training sequences with every validation sequence made whole again.

    What a closed-form model is refitted on once validation has served its purpose: each
    validation case's history plus targets replaces that sequence's training part (per-user
    protocols) or joins the training set (held-out playlists). Test targets stay out.
    """
    whole: dict[str, np.ndarray] = {}
    for history, targets, sequence_id in zip(
        split.validation.histories,
        split.validation.targets,
        split.validation.sequence_ids,
        strict=True,
    ):
        if sequence_id not in whole or len(history) + len(targets) > len(whole[sequence_id]):
            whole[sequence_id] = np.concatenate([history, targets]).astype(np.int64)
    ids = split.train.sequence_ids or [str(i) for i in range(len(split.train))]
    sequences = [
        whole.pop(i, sequence) for sequence, i in zip(split.train.sequences, ids, strict=True)
    ]
    return Interactions([*sequences, *whole.values()], split.train.n_items, [*ids, *whole.keys()])


def leak_holdout_targets(split: Split) -> Split:
    """The original design's leak, for comparison only: train on the held-out targets too.

    Each user's training sequence gets its validation and test targets back, as the original
    autoencoder trained with input and target = all of a user's items and was then scored on
    items it had already been fitted to. Labelled ``leaky`` in the protocol and description.
    """
    extra: dict[str, list[np.ndarray]] = {}
    for holdout in (split.validation, split.test):
        for sequence_id, targets in zip(holdout.sequence_ids, holdout.targets, strict=True):
            extra.setdefault(sequence_id, []).append(targets)
    ids = split.train.sequence_ids or [str(i) for i in range(len(split.train))]
    sequences = [
        np.concatenate([sequence, *extra.get(sequence_id, [])])
        for sequence, sequence_id in zip(split.train.sequences, ids, strict=True)
    ]
    train = Interactions(sequences, split.train.n_items, list(ids))
    description = {**split.description, "leaky": True, "train_interactions": train.n_interactions}
    return Split(
        train, split.validation, split.test, f"{split.protocol}-leaky", split.seed, description
    )


def split_temporal(
    interactions: Interactions,
    timestamps: Sequence[np.ndarray],
    *,
    validation_fraction: float,
    test_fraction: float,
    seed: int = 0,
    protocol: str = "temporal",
) -> Split:
    """One global cut-off in time: later interactions become targets, earlier ones history.

    The test cut-off is the ``1 - test_fraction`` quantile of all timestamps and the validation
    cut-off the ``1 - test_fraction - validation_fraction`` quantile. Training keeps every
    interaction before the validation cut-off. A user gives a validation case when it has items
    on both sides of the validation cut-off (targets: items between the two cut-offs), and a
    test case when it has items on both sides of the test cut-off (targets: items after it).
    Targets already in the case's history are dropped (they cannot be recommended again). The
    split has no randomness; ``seed`` is recorded only.
    """
    if len(timestamps) != len(interactions):
        raise ValueError("timestamps must hold one array per sequence")
    if validation_fraction <= 0 or test_fraction <= 0 or validation_fraction + test_fraction >= 1:
        raise ValueError("validation_fraction and test_fraction must be positive, sum below 1")
    every = np.concatenate([np.asarray(t, dtype=np.float64) for t in timestamps])
    if not len(every) or np.isnan(every).any():
        raise ValueError("a temporal split needs a timestamp on every interaction")
    test_cut = float(np.quantile(every, 1 - test_fraction))
    validation_cut = float(np.quantile(every, 1 - test_fraction - validation_fraction))

    train_sequences, train_ids = [], []
    validation, test = _Cases(), _Cases()
    for sequence, times, sequence_id in zip(
        interactions.sequences, timestamps, _sequence_ids(interactions), strict=True
    ):
        times = np.asarray(times, dtype=np.float64)
        before_validation = sequence[times < validation_cut]
        if len(before_validation):
            train_sequences.append(before_validation)
            train_ids.append(sequence_id)
        between = sequence[(times >= validation_cut) & (times < test_cut)]
        between = np.unique(between[~np.isin(between, before_validation)])
        if len(before_validation) and len(between):
            validation.add(before_validation, between, sequence_id)
        before_test = sequence[times < test_cut]
        after = sequence[times >= test_cut]
        after = np.unique(after[~np.isin(after, before_test)])
        if len(before_test) and len(after):
            test.add(before_test, after, sequence_id)
    train = Interactions(train_sequences, interactions.n_items, train_ids)
    return _per_sequence_split(
        train,
        validation,
        test,
        protocol,
        seed,
        "temporal",
        validation_cutoff=validation_cut,
        test_cutoff=test_cut,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
    )
