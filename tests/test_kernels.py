"""The compiled loops: NumPy's exact results, and clear refusals of arrays they cannot read."""

from __future__ import annotations

import numpy as np
import pytest
from segue._kernels import (
    BOUND_BLOCK,
    add_rows,
    block_maxima,
    count_runs,
    rank_row,
    rank_row_sum,
    top_k_rows,
)


@pytest.mark.parametrize("count", [1, 7, 8, 9, 17, 40])
def test_add_rows_equals_numpy_adding_the_rows_one_after_another(count: int) -> None:
    rng = np.random.default_rng(count)
    weights = (rng.standard_normal((50, 301)) * 10.0 ** rng.integers(-4, 4, (50, 1))).astype(
        np.float32
    )
    items = rng.integers(0, 50, count)  # any order, repeats included: added as given
    expected = np.full(301, 0.5, dtype=np.float32)
    for item in items:
        np.add(expected, weights[item], out=expected)
    out = np.full(301, 0.5, dtype=np.float32)
    add_rows(weights, items.astype(np.int64), out)
    assert out.tobytes() == expected.tobytes()  # bit for bit, not merely close


def test_add_rows_refuses_what_it_cannot_read_and_names_it() -> None:
    weights = np.ones((3, 4), dtype=np.float32)
    out = np.zeros(4, dtype=np.float32)
    with pytest.raises(IndexError, match="item 3 is outside the 3 weight rows"):
        add_rows(weights, np.array([0, 3]), out)
    with pytest.raises(IndexError, match="item -1"):
        add_rows(weights, np.array([-1]), out)
    with pytest.raises(TypeError, match="weights must be a 2-D C-contiguous array of float32"):
        add_rows(weights.astype(np.float64), np.array([0]), out)
    with pytest.raises(ValueError, match="C-contiguous"):
        add_rows(np.asfortranarray(np.ones((3, 4), dtype=np.float32)), np.array([0]), out)
    with pytest.raises(TypeError, match="items must be"):
        add_rows(weights, np.array([0], dtype=np.int32), out)
    with pytest.raises(ValueError, match="out has 5 entries, the weight rows 4"):
        add_rows(weights, np.array([0]), np.zeros(5, dtype=np.float32))
    assert out.tolist() == [0.0] * 4  # nothing was added by a refused call


NOTHING = np.empty(0, dtype=np.int64)


def _nothing_skipped(rows: int) -> tuple[np.ndarray, np.ndarray]:
    return NOTHING, np.zeros(rows + 1, dtype=np.int64)


def test_top_k_rows_orders_by_score_then_index_and_leaves_out_what_is_not_finite() -> None:
    scores = np.array(
        [[0.5, np.inf, 2.0, np.nan, 2.0, -np.inf, 1.0], [np.nan] * 7], dtype=np.float32
    )
    out = np.empty((2, 5), dtype=np.int64)
    top_k_rows(scores, out, *_nothing_skipped(2), None)
    assert out.tolist() == [[2, 4, 6, 0, -1], [-1] * 5]


def test_top_k_rows_leaves_out_each_rows_skipped_items_and_the_banned_ones() -> None:
    scores = np.tile(np.arange(10, 0, -1, dtype=np.float32), (3, 1))  # item 0 best
    skip, bounds = np.array([0, 4, 9, 1]), np.array([0, 3, 3, 4])  # rows: {0, 4, 9}, {}, {1}
    banned = np.zeros(10, dtype=bool)
    banned[2] = True
    out = np.empty((3, 3), dtype=np.int64)
    top_k_rows(scores, out, skip, bounds, banned)
    assert out.tolist() == [[1, 3, 5], [0, 1, 3], [0, 3, 4]]


@pytest.mark.parametrize("n_items", [63, 64, 65, 1000])
def test_top_k_rows_finds_the_best_wherever_a_block_ends(n_items: int) -> None:
    """Blocks whose best cannot enter the heap are passed over: the best items sit at the very
    start and end of the row, at block edges, and tie with the heap's worst."""
    scores = np.zeros((1, n_items), dtype=np.float32)
    for position, score in ((n_items - 1, 5.0), (0, 4.0), (n_items // 2, 4.0), (63, 3.0)):
        scores[0, min(position, n_items - 1)] = score
    out = np.empty((1, 6), dtype=np.int64)
    top_k_rows(scores, out, *_nothing_skipped(1), None)
    order = np.lexsort((np.arange(n_items), -scores[0]))[:6]
    assert out[0].tolist() == order.tolist()


def test_top_k_rows_refuses_what_it_cannot_read_and_names_it() -> None:
    scores, out = np.zeros((2, 3), dtype=np.float32), np.empty((2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="out has 1 rows, scores 2"):
        top_k_rows(scores, out[:1], *_nothing_skipped(2), None)
    read_only = out.copy()
    read_only.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        top_k_rows(scores, read_only, *_nothing_skipped(2), None)
    with pytest.raises(ValueError, match="skip_bounds must run from 0 to the 1 skipped items"):
        top_k_rows(scores, out, np.array([1]), np.array([0, 0, 0]), None)
    with pytest.raises(ValueError, match="skip_bounds fall from row 1"):
        top_k_rows(scores, out, np.array([1]), np.array([0, 2, 1]), None)
    with pytest.raises(ValueError, match="skipped items of row 1 are not ascending"):
        top_k_rows(scores, out, np.array([2, 1]), np.array([0, 0, 2]), None)
    with pytest.raises(ValueError, match="banned has 2 entries, scores rows 3"):
        top_k_rows(scores, out, *_nothing_skipped(2), np.zeros(2, dtype=bool))
    with pytest.raises(TypeError, match="banned must be a 1-D C-contiguous array of booleans"):
        top_k_rows(scores, out, *_nothing_skipped(2), np.zeros(3, dtype=np.int8))


def test_rank_row_sum_lists_counts_and_refuses_what_it_cannot_read() -> None:
    weights = np.array([[0, 3, 2, 1], [0, 0, 1, 5], [1, 1, 0, 0], [4, 0, 0, 0]], np.float32)
    history, excluded = np.array([1, 0, 1, 9]), np.array([2, -1])
    banned = np.array([False, False, False, True])
    # Rows 0 and 1 (9 is no item) add up to [0, 3, 3, 6]. Without 3 (banned), the two heard and
    # 2 (excluded) nothing is left: the list is short, so each finite one counts as removed.
    listed = rank_row_sum(weights, history, excluded, 1, banned, np.array([3]))
    assert listed == ([], [], 2, 1, 1)
    # Only the heard left out: 3 then 2; the one heard that scores at least 3 (item 1) counts.
    assert rank_row_sum(weights, history, NOTHING, 2, None, None) == ([3, 2], [6.0, 3.0], 1, 0, 0)
    with pytest.raises(ValueError, match="weights must be square, got 4 x 3"):
        rank_row_sum(weights[:, :3].copy(), history, excluded, 1, None, None)
    with pytest.raises(TypeError, match="history must be"):
        rank_row_sum(weights, history.astype(np.int32), excluded, 1, None, None)
    with pytest.raises(ValueError, match="k must be at least 0"):
        rank_row_sum(weights, history, excluded, -1, None, None)
    with pytest.raises(ValueError, match="banned has 3 entries, the weight rows 4"):
        rank_row_sum(weights, history, excluded, 1, banned[:3].copy(), np.array([3]))
    with pytest.raises(ValueError, match="banned_items are not ascending"):
        rank_row_sum(weights, history, excluded, 1, banned, np.array([3, 1]))
    with pytest.raises(IndexError, match="banned_items reach outside the 4 items"):
        rank_row_sum(weights, history, excluded, 1, banned, np.array([4]))


def _block_maxima(weights: np.ndarray) -> np.ndarray:
    bounds = np.empty((len(weights), -(-len(weights) // BOUND_BLOCK)), np.float32)
    assert block_maxima(weights, bounds)
    return bounds


@pytest.mark.parametrize("seed", range(30))
def test_rank_row_sum_with_block_bounds_lists_and_counts_as_adding_up_every_column(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 300))
    # Heavy-tailed weights, as a model's are (few blocks can reach a list), rounded so that sums
    # tie across blocks, where the lower index must still win; or a few values and short
    # histories, so that a block's bound often equals the list's last score; or all negative, so
    # that the blocks passed over would count as removed if their scores were read as zero.
    shape, longest = (n_items, n_items), 40
    if seed % 3 == 0:
        weights, longest = rng.integers(-3, 4, shape).astype(np.float32), 3
    else:
        weights = np.round(rng.standard_normal(shape) ** 3, 1).astype(np.float32)
    if seed % 3 == 2:
        weights = -np.abs(weights) - 0.5
    bounds = _block_maxima(weights)
    history = rng.integers(-2, n_items + 2, int(rng.integers(0, longest)))
    excluded = rng.integers(-1, n_items + 1, int(rng.integers(0, 6)))
    banned = rng.random(n_items) < 0.1
    for k in (0, 1, 10, int(rng.integers(1, n_items + 3))):
        for ban in ((None, None), (banned, np.flatnonzero(banned))):
            every_column = rank_row_sum(weights, history, excluded, k, *ban)
            bounded = rank_row_sum(weights, history, excluded, k, *ban, bounds)
            assert bounded == every_column
            # Bit for bit, zero's sign included (equal floats can differ there).
            assert np.float32(bounded[1]).tobytes() == np.float32(every_column[1]).tobytes()


def test_block_maxima_bounds_each_block_and_refuses_weights_it_cannot_bound() -> None:
    n_items = BOUND_BLOCK + 3  # a last block of 3 columns
    weights = np.random.default_rng(0).standard_normal((n_items, n_items)).astype(np.float32)
    expected = np.stack(
        [weights[:, :BOUND_BLOCK].max(axis=1), weights[:, BOUND_BLOCK:].max(axis=1)], axis=1
    )
    np.testing.assert_array_equal(_block_maxima(weights), expected)
    out = np.empty((n_items, 2), np.float32)
    for value in (np.nan, np.inf, -np.inf, 1e37):  # 1e37: a sum of 19 rows could overflow
        unbounded = weights.copy()
        unbounded[n_items - 1, 5] = value
        assert not block_maxima(unbounded, out)
    with pytest.raises(ValueError, match="weights must be square, got 19 x 18"):
        block_maxima(weights[:, :-1].copy(), out)
    with pytest.raises(ValueError, match="out must be 19 x 2, got 19 x 3"):
        block_maxima(weights, np.empty((n_items, 3), np.float32))
    with pytest.raises(ValueError, match=r"bounds must be 19 x 2 \(block_maxima\), got 19 x 1"):
        rank_row_sum(weights, np.array([0]), NOTHING, 3, None, None, out[:, :1].copy())
    with pytest.raises(TypeError, match="bounds must be a 2-D C-contiguous array of float32"):
        rank_row_sum(weights, np.array([0]), NOTHING, 3, None, None, out.astype(np.float64))


def test_rank_row_ranks_a_row_as_given_and_refuses_what_it_cannot_read() -> None:
    row = np.array([0, 3, 3, 6], np.float32)  # the sum rank_row_sum's test adds up
    history, excluded = np.array([1, 0, 1, 9]), np.array([2, -1])
    banned = np.array([False, False, False, True])
    assert rank_row(row, history, excluded, 1, banned, np.array([3])) == ([], [], 2, 1, 1)
    assert rank_row(row, history, NOTHING, 2, None, None) == ([3, 2], [6.0, 3.0], 1, 0, 0)
    assert rank_row(np.full(4, np.nan, np.float32), history, NOTHING, 2, None, None) is None
    with pytest.raises(TypeError, match="row must be a 1-D C-contiguous array"):
        rank_row(row[None, :], history, excluded, 1, None, None)
    with pytest.raises(ValueError, match="banned has 3 entries, the row 4"):
        rank_row(row, history, excluded, 1, banned[:3].copy(), np.array([3]))


def _runs_counted(members, starts, ends, groups, counts, minimums=None):
    out = np.empty((3, int((ends - starts).sum())), dtype=np.int64)
    found = count_runs(members, starts, ends, groups, counts, out[0], out[1], out[2], minimums)
    return out[:, :found]


def test_count_runs_counts_each_groups_owners_and_leaves_the_scratch_zero() -> None:
    rng = np.random.default_rng(5)
    members = rng.integers(0, 40, 500).astype(np.int32)
    starts = rng.integers(0, 480, 30)
    ends = starts + rng.integers(0, 20, 30)
    groups = np.sort(rng.integers(0, 6, 30))
    counts = np.zeros(40, dtype=np.int32)
    group, owner, shared = _runs_counted(members, starts, ends, groups, counts)
    expected = {}
    for start, end, run_group in zip(starts, ends, groups, strict=True):
        for member in members[start:end]:
            expected[(int(run_group), int(member))] = (
                expected.get((int(run_group), int(member)), 0) + 1
            )
    assert dict(zip(zip(group.tolist(), owner.tolist()), shared.tolist())) == expected
    assert len(group) == len(expected)  # each owner once per group
    assert not counts.any()
    # With a minimum per group: the same owners, in the same order, less those counted fewer
    # times than their group's minimum.
    least = rng.integers(0, 4, 6)
    kept = shared >= least[group]
    assert kept.any() and not kept.all()
    counted = _runs_counted(members, starts, ends, groups, counts, least[groups])
    assert counted.tolist() == [group[kept].tolist(), owner[kept].tolist(), shared[kept].tolist()]
    assert not counts.any()


def test_count_runs_refuses_what_it_cannot_read_and_leaves_the_scratch_zero() -> None:
    members = np.array([0, 1, 7, 1], dtype=np.int32)
    counts = np.zeros(4, dtype=np.int32)
    one = np.zeros(1, dtype=np.int64)
    with pytest.raises(IndexError, match="member 7 is outside the 4 owners"):
        _runs_counted(members, one, np.array([4]), one, counts)
    assert not counts.any()
    with pytest.raises(IndexError, match=r"run 0 \[2, 9\) is outside the 4 members"):
        _runs_counted(members, np.array([2]), np.array([9]), one, counts)
    with pytest.raises(ValueError, match="groups are not ascending"):
        _runs_counted(members, np.array([0, 0]), np.array([1, 1]), np.array([1, 0]), counts)
    with pytest.raises(ValueError, match="starts, ends, groups and minimums differ in length"):
        _runs_counted(members, one, np.array([4]), one, counts, np.array([1, 1]))
    with pytest.raises(TypeError, match="minimums must be"):
        _runs_counted(members, one, np.array([4]), one, counts, np.array([1.0]))
    with pytest.raises(TypeError, match="members must be a 1-D C-contiguous array of int32"):
        _runs_counted(members.astype(np.int64), one, one, one, counts)
    out = np.empty(1, dtype=np.int64)
    with pytest.raises(ValueError, match="the out arrays hold 1 entries, the runs 2"):
        count_runs(members, one, np.array([2]), one, counts, out, out, out)
