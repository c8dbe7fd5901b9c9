"""Drift: the reference profile of training data, and every test against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from segue.data.interactions import Interactions
from segue.monitoring.drift import (
    DriftThresholds,
    input_drift,
    ks_drift,
    population_stability_index,
    psi_drift,
    rate_drift,
    reference_profile,
    two_proportion_z_test,
)


def _sequences() -> Interactions:
    return Interactions([np.array([0, 1, 2]), np.array([1, 2])], 3, ["a", "b"])


def test_next_song_reference_counts_every_prefix_a_playlist_sends() -> None:
    # counts [1, 2, 2] -> popularity percentiles [0, 0.75, 0.75]
    profile = reference_profile("next-song", _sequences(), np.array([1, 2, 2]))
    assert profile["history_length"]["sample"] == [1, 2, 1]  # prefixes of 3 and of 2 songs
    assert profile["history_length"]["mean"] == pytest.approx(4 / 3)
    # item 0 is in 2 prefixes (percentile 0), item 1 in 1 + 1 (percentile 0.75): half each
    shares = profile["input_popularity"]["shares"]
    assert shares[0] == pytest.approx(0.5) and shares[7] == pytest.approx(0.5)
    assert sum(shares) == pytest.approx(1.0)
    assert profile["n_interactions"] == 5 and profile["n_sequences"] == 2
    assert profile["unknown_item_rate"] == 0.0
    assert profile["new_user_rate"] is None


def test_user_items_reference_counts_each_history_once() -> None:
    profile = reference_profile("user-items", _sequences(), np.array([1, 2, 2]))
    assert profile["history_length"]["sample"] == [3, 2]
    shares = profile["input_popularity"]["shares"]
    assert shares[0] == pytest.approx(1 / 5) and shares[7] == pytest.approx(4 / 5)
    assert profile["new_user_rate"] == 0.0


def test_reference_sample_is_bounded_and_seeded() -> None:
    long = Interactions([np.arange(200) % 5 for _ in range(60)], 5)
    first = reference_profile("next-song", long, np.ones(5), seed=1)
    again = reference_profile("next-song", long, np.ones(5), seed=1)
    assert len(first["history_length"]["sample"]) == 5000
    assert first == again


def test_population_stability_index_by_hand() -> None:
    # (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5)
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)
    assert population_stability_index([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert population_stability_index([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_two_proportion_z_test_by_hand() -> None:
    # pooled 0.15; spread sqrt(0.15 * 0.85 * (1/100 + 1/100)); z = -0.1 / spread
    z, p_value = two_proportion_z_test(10, 100, 20, 100)
    spread = math.sqrt(0.15 * 0.85 * 0.02)
    assert z == pytest.approx(-0.1 / spread)
    assert p_value == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)))  # Phi(z)
    assert p_value == pytest.approx(0.0238, abs=1e-4)
    with pytest.raises(ValueError, match="at least one trial"):
        two_proportion_z_test(0, 0, 1, 10)


def test_chi_square_rate_drift_by_hand() -> None:
    # [[0, 100], [10, 90]]: expected [[5, 95], [5, 95]]; chi2 = 2 * (25/5 + 25/95)
    result = rate_drift("unknown_item_rate", 0.0, 100, 10, 100, threshold=0.05, alpha=0.01)
    assert result.statistic == pytest.approx(2 * (5 + 25 / 95))
    assert result.current == pytest.approx(0.1) and result.effect == pytest.approx(0.1)
    assert result.p_value < 0.01 and result.alert
    quiet = rate_drift("unknown_item_rate", 0.0, 100, 0, 100, threshold=0.05, alpha=0.01)
    assert quiet.statistic == 0.0 and quiet.p_value == 1.0 and not quiet.alert
    small = rate_drift("unknown_item_rate", 0.0, 100, 10, 100, threshold=0.2, alpha=0.01)
    assert not small.alert  # significant, but below the threshold


def test_ks_drift_by_hand() -> None:
    result = ks_drift("history_length", [1, 2, 3, 4], [3, 4, 5, 6], threshold=0.2, alpha=0.5)
    assert result.statistic == pytest.approx(0.5)  # the CDFs differ by 1/2 at 2 and at 4
    assert result.test == "two-sample Kolmogorov-Smirnov"
    assert result.reference == 2.5 and result.current == 4.5
    untested = ks_drift("history_length", [1, 2], [], threshold=0.2, alpha=0.5)
    assert not untested.alert and untested.message.startswith("not tested")


def test_psi_drift_alerts_on_a_shift_and_not_on_the_same_shape() -> None:
    reference = [0.5, 0.5]
    shifted = psi_drift("input_popularity", reference, 1000, [0.1, 0.9], 1000, 0.2, 0.01)
    assert shifted.statistic == pytest.approx(population_stability_index(reference, [0.1, 0.9]))
    assert shifted.alert
    same = psi_drift("input_popularity", reference, 1000, [0.5, 0.5], 1000, 0.2, 0.01)
    assert same.statistic == 0.0 and not same.alert


def _lists(
    n: int, *, size: int, unmatched: int, items: list[str], known: bool | None
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "input_size": [size] * n,
            "unmatched": [unmatched] * n,
            "input_items": [items] * n,
            "known_user": [known] * n,
            "user_id": [None if known is None else "u"] * n,
        }
    )


def test_input_drift_quiet_on_training_like_traffic_and_loud_on_shifted_traffic() -> None:
    sequences = Interactions([np.array([0, 1, 2, 3]) for _ in range(50)], 4, [])
    reference = reference_profile("user-items", sequences, np.array([1, 2, 3, 4]))
    percentile_of = {"a": 0.0, "b": 1 / 3, "c": 2 / 3, "d": 1.0}
    thresholds = DriftThresholds(min_lists=30)

    normal = input_drift(
        reference,
        _lists(40, size=4, unmatched=0, items=list("abcd"), known=True),
        percentile_of,
        thresholds,
    )
    assert not any(result.alert for result in normal.values())
    assert normal["history_length"].statistic == 0.0

    shifted = input_drift(
        reference,
        _lists(40, size=9, unmatched=5, items=["a"] * 4, known=False),
        percentile_of,
        thresholds,
    )
    assert {name for name, result in shifted.items() if result.alert} == {
        "history_length",
        "unknown_item_rate",
        "input_popularity",
        "new_users",
    }
    assert shifted["unknown_item_rate"].current == pytest.approx(5 / 9)
    assert shifted["new_users"].current == 1.0


def test_input_drift_needs_enough_lists() -> None:
    sequences = Interactions([np.array([0, 1])], 2, [])
    reference = reference_profile("next-song", sequences, np.array([1, 1]))
    few = input_drift(
        reference, _lists(3, size=9, unmatched=9, items=[], known=None), {}, DriftThresholds()
    )
    assert not any(result.alert for result in few.values())
    assert all("fewer than 30" in result.message for result in few.values())


def test_new_users_count_only_lists_asked_for_a_user_id() -> None:
    sequences = Interactions([np.array([0, 1, 2, 3]) for _ in range(50)], 4, [])
    reference = reference_profile("user-items", sequences, np.array([1, 2, 3, 4]))
    lists = pd.concat(
        [
            _lists(40, size=4, unmatched=0, items=list("abcd"), known=True),
            # histories sent without an id: the server logs them as not known, but no user
            _lists(40, size=4, unmatched=0, items=list("abcd"), known=False).assign(user_id=None),
        ],
        ignore_index=True,
    )
    result = input_drift(reference, lists, {}, DriftThresholds())["new_users"]
    assert result.current == 0.0 and not result.alert
