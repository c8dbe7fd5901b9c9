"""Splits: deterministic for a seed, targets never in the training data or in their own history."""

from __future__ import annotations

import numpy as np
import pytest

from segue.data.interactions import Interactions, Split
from segue.data.splits import (
    every_position_cases,
    last_position_cases,
    leak_holdout_targets,
    sampled_position_cases,
    split_by_playlist,
    split_leave_last,
    split_random_holdout,
    split_temporal,
    with_validation,
)


def _users(lengths: list[int], n_items: int = 60, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    sequences = [rng.choice(n_items, size=length, replace=False) for length in lengths]
    return Interactions(sequences, n_items, [f"u{i}" for i in range(len(lengths))])


def _same(first: Split, second: Split) -> bool:
    pairs = [
        (first.train.sequences, second.train.sequences),
        (first.validation.histories, second.validation.histories),
        (first.validation.targets, second.validation.targets),
        (first.test.histories, second.test.histories),
        (first.test.targets, second.test.targets),
    ]
    return all(
        len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        for a, b in pairs
    )


def _assert_targets_unseen(split: Split) -> None:
    """No target is in its own history or in the same user's training sequence."""
    train = dict(zip(split.train.sequence_ids, split.train.sequences, strict=True))
    for holdout in (split.validation, split.test):
        for history, targets, sequence_id in zip(
            holdout.histories, holdout.targets, holdout.sequence_ids, strict=True
        ):
            assert not np.isin(targets, history).any()
            assert not np.isin(targets, train.get(sequence_id, np.empty(0))).any()


class TestRandomHoldout:
    def test_counts_follow_the_original_design(self) -> None:
        data = _users([30, 25, 21, 15, 10, 4])
        split = split_random_holdout(data, n=10, seed=42)
        # 30, 25, 21 give test and validation; 15 gives test only; 10 and 4 stay in train.
        assert len(split.test) == 4
        assert len(split.validation) == 3
        assert [len(t) for t in split.test.targets] == [10, 10, 10, 10]
        assert [len(t) for t in split.validation.targets] == [10, 10, 10]
        assert [len(s) for s in split.train.sequences] == [10, 5, 1, 5, 10, 4]
        assert [len(h) for h in split.test.histories] == [20, 15, 11, 5]
        assert split.description["too_short_kept_in_train"] == 2
        assert split.description["test_only_no_validation"] == 1

    def test_every_item_lands_in_exactly_one_place(self) -> None:
        data = _users([30, 25, 21])
        split = split_random_holdout(data, n=10, seed=1)
        for user in range(3):
            parts = [
                split.train.sequences[user],
                split.validation.targets[user],
                split.test.targets[user],
            ]
            joined = np.concatenate(parts)
            assert len(joined) == len(np.unique(joined)) == len(data.sequences[user])
            assert np.array_equal(np.sort(joined), np.sort(data.sequences[user]))
        _assert_targets_unseen(split)

    def test_history_keeps_the_users_order(self) -> None:
        data = _users([30])
        split = split_random_holdout(data, n=10, seed=3)
        order = {item: position for position, item in enumerate(data.sequences[0])}
        positions = [order[item] for item in split.test.histories[0]]
        assert positions == sorted(positions)

    def test_same_seed_same_split_other_seed_differs(self) -> None:
        data = _users([30, 25, 40, 22])
        assert _same(split_random_holdout(data, seed=42), split_random_holdout(data, seed=42))
        assert not _same(split_random_holdout(data, seed=42), split_random_holdout(data, seed=7))

    def test_leak_puts_the_targets_back_into_training(self) -> None:
        data = _users([30, 25])
        split = leak_holdout_targets(split_random_holdout(data, n=10, seed=42))
        assert split.protocol == "random-holdout-leaky"
        assert split.description["leaky"] is True
        for user in range(2):
            assert np.isin(split.test.targets[user], split.train.sequences[user]).all()
            assert len(split.train.sequences[user]) == len(data.sequences[user])


class TestLeaveLast:
    def test_last_item_is_test_the_one_before_is_validation(self) -> None:
        data = Interactions(
            [np.array([5, 6, 7, 8]), np.array([1, 2, 3]), np.array([9, 4])], 10, ["a", "b", "c"]
        )
        split = split_leave_last(data, n=1)
        assert [t.tolist() for t in split.test.targets] == [[8], [3]]
        assert [h.tolist() for h in split.test.histories] == [[5, 6, 7], [1, 2]]
        assert [t.tolist() for t in split.validation.targets] == [[7], [2]]
        assert [h.tolist() for h in split.validation.histories] == [[5, 6], [1]]
        assert [s.tolist() for s in split.train.sequences] == [[5, 6], [1], [9, 4]]
        assert split.test.sequence_ids == ["a", "b"]
        assert split.description["too_short_kept_in_train"] == 1

    def test_leave_last_two(self) -> None:
        data = Interactions([np.arange(7)], 10, ["a"])
        split = split_leave_last(data, n=2)
        assert split.test.targets[0].tolist() == [5, 6]
        assert split.validation.targets[0].tolist() == [3, 4]
        assert split.train.sequences[0].tolist() == [0, 1, 2]


class TestByPlaylist:
    def test_playlists_are_partitioned_whole(self) -> None:
        data = _users([6] * 50 + [1, 1])
        split = split_by_playlist(data, validation_fraction=0.1, test_fraction=0.2, seed=5)
        assert split.description["test_sequences"] == 10
        assert split.description["validation_sequences"] == 5
        assert len(split.train) == 37  # 35 eligible playlists + the two single-song ones
        assert len(split.test) == 10 * 5  # every position 1..5 of each held-out playlist
        train_ids = set(split.train.sequence_ids)
        assert not train_ids & set(split.test.sequence_ids)
        assert not train_ids & set(split.validation.sequence_ids)
        assert not set(split.test.sequence_ids) & set(split.validation.sequence_ids)

    def test_deterministic_for_a_seed(self) -> None:
        data = _users([6] * 50)
        first = split_by_playlist(data, validation_fraction=0.1, test_fraction=0.1, seed=9)
        again = split_by_playlist(data, validation_fraction=0.1, test_fraction=0.1, seed=9)
        other = split_by_playlist(data, validation_fraction=0.1, test_fraction=0.1, seed=10)
        assert _same(first, again)
        assert not _same(first, other)

    def test_every_position_and_last_position_cases(self) -> None:
        playlists = Interactions([np.array([4, 2, 7]), np.array([1, 3])], 8, ["p", "q"])
        cases = every_position_cases(playlists)
        assert [h.tolist() for h in cases.histories] == [[4], [4, 2], [1]]
        assert [t.tolist() for t in cases.targets] == [[2], [7], [3]]
        last = last_position_cases(cases)
        assert [h.tolist() for h in last.histories] == [[4, 2], [1]]
        assert [t.tolist() for t in last.targets] == [[7], [3]]


class TestSampledPositions:
    def test_zero_means_every_position(self) -> None:
        playlists = _users([6, 9, 2])
        every = every_position_cases(playlists)
        sampled = sampled_position_cases(playlists, 0, seed=3)
        assert [h.tolist() for h in sampled.histories] == [h.tolist() for h in every.histories]
        assert sampled.sequence_ids == every.sequence_ids

    def test_a_seeded_sample_that_always_holds_the_last_position(self) -> None:
        playlists = _users([30, 12, 4, 2])
        cases = sampled_position_cases(playlists, 5, seed=7)
        by_id: dict[str, list[int]] = {}
        for history, sequence_id in zip(cases.histories, cases.sequence_ids, strict=True):
            by_id.setdefault(sequence_id, []).append(len(history))
        # at most 5 positions each (all 3 of the 4-song playlist, the 1 of the 2-song one)
        assert {key: len(value) for key, value in by_id.items()} == {
            "u0": 5,
            "u1": 5,
            "u2": 3,
            "u3": 1,
        }
        for index, sequence in enumerate(playlists.sequences):
            positions = by_id[f"u{index}"]
            assert positions == sorted(set(positions))  # in order, no repeats
            assert positions[-1] == len(sequence) - 1  # the last position is always scored
        for history, targets, sequence_id in zip(
            cases.histories, cases.targets, cases.sequence_ids, strict=True
        ):
            sequence = playlists.sequences[int(sequence_id[1:])]
            assert targets.tolist() == [sequence[len(history)]]
        last = last_position_cases(cases)
        assert [len(h) for h in last.histories] == [29, 11, 3, 1]

    def test_same_seed_same_positions_other_seed_differs(self) -> None:
        playlists = _users([40] * 5)
        first = sampled_position_cases(playlists, 4, seed=1)
        again = sampled_position_cases(playlists, 4, seed=1)
        other = sampled_position_cases(playlists, 4, seed=2)
        lengths = [len(h) for h in first.histories]
        assert lengths == [len(h) for h in again.histories]
        assert lengths != [len(h) for h in other.histories]

    def test_split_by_playlist_samples_and_says_so(self) -> None:
        data = _users([20] * 30)
        plain = split_by_playlist(data, validation_fraction=0.1, test_fraction=0.2, seed=5)
        sampled = split_by_playlist(
            data, validation_fraction=0.1, test_fraction=0.2, seed=5, positions_per_sequence=3
        )
        assert "positions_per_sequence" not in plain.description  # older splits read the same
        assert sampled.description["positions_per_sequence"] == 3
        assert len(sampled.test) == 6 * 3 and len(plain.test) == 6 * 19
        assert sampled.test.sequence_ids[::3] == plain.test.sequence_ids[::19]
        assert [s.tolist() for s in sampled.train.sequences] == [
            s.tolist() for s in plain.train.sequences
        ]
        # the refit on validation playlists still sees each of them whole
        restored = with_validation(sampled)
        assert restored.n_interactions == with_validation(plain).n_interactions

    def test_refuses_a_negative_count(self) -> None:
        with pytest.raises(ValueError, match="per_sequence"):
            sampled_position_cases(_users([5]), -1, seed=0)


class TestTemporal:
    def test_one_cut_off_for_everyone(self) -> None:
        data = Interactions(
            [np.array([0, 1, 2, 3, 4]), np.array([5, 6, 7, 8, 9])], 10, ["early", "late"]
        )
        times = [np.array([1.0, 2, 3, 4, 5]), np.array([6.0, 7, 8, 9, 10])]
        split = split_temporal(data, times, validation_fraction=0.2, test_fraction=0.2)
        # cut-offs: validation at the 0.6 quantile (6.4), test at the 0.8 quantile (8.2)
        assert split.train.sequence_ids == ["early", "late"]
        assert [s.tolist() for s in split.train.sequences] == [[0, 1, 2, 3, 4], [5]]
        assert split.validation.sequence_ids == ["late"]
        assert split.validation.targets[0].tolist() == [6, 7]
        assert split.test.sequence_ids == ["late"]
        assert split.test.histories[0].tolist() == [5, 6, 7]
        assert split.test.targets[0].tolist() == [8, 9]
        _assert_targets_unseen(split)

    def test_refuses_missing_timestamps(self) -> None:
        data = Interactions([np.array([0, 1])], 2, ["a"])
        with pytest.raises(ValueError, match="timestamp"):
            split_temporal(
                data, [np.array([1.0, np.nan])], validation_fraction=0.1, test_fraction=0.1
            )


def test_with_validation_restores_validation_items_but_never_test_items() -> None:
    rng = np.random.default_rng(3)
    sequences = [rng.choice(50, size=30, replace=False).astype(np.int64) for _ in range(6)]
    interactions = Interactions(sequences, 50, [f"u{i}" for i in range(6)])
    split = split_random_holdout(interactions, n=5, seed=1)
    refitted = with_validation(split)
    refit = dict(zip(refitted.sequence_ids, refitted.sequences))
    tests = dict(zip(split.test.sequence_ids, split.test.targets))
    for user, sequence in zip(interactions.sequence_ids, interactions.sequences):
        assert set(refit[user]) == set(sequence) - set(tests.get(user, []))
