"""The gate's policy: the direction of each metric, the minimum gain and the tie rule."""

from __future__ import annotations

import pytest

from segue.tracking.promotion import PromotionError, decide


def test_decide_knows_the_direction_of_the_metric():
    assert decide(0.30, 0.20, "ndcg_at_10", 0.0)[0]
    assert not decide(0.20, 0.30, "ndcg_at_10", 0.0)[0]
    # Lower is better: a lower popularity percentile (or loss) wins.
    assert decide(0.20, 0.30, "popularity_percentile_at_10", 0.0)[0]
    assert not decide(0.30, 0.20, "loss", 0.0)[0]
    assert decide(0.30, 0.20, "last_ndcg_at_10", 0.0)[0]


def test_decide_keeps_the_champion_on_a_tie_and_below_the_minimum_gain():
    assert decide(0.3, 0.3, "ndcg_at_10", 0.0) == (False, "tie: the champion stays")
    assert not decide(0.304, 0.3, "ndcg_at_10", 0.005)[0]
    assert decide(0.306, 0.3, "ndcg_at_10", 0.005)[0]
    assert decide(0.1, None, "ndcg_at_10", 0.005) == (True, "no champion yet")
    with pytest.raises(PromotionError, match="unknown metric 'accuracy'"):
        decide(0.3, 0.2, "accuracy", 0.0)
