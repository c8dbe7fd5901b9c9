"""Business rules: one tiny hand-checkable fixture per rule, exact counts after it runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.data.rules import (
    RULE_ORDER,
    apply_implicit_threshold,
    apply_rules,
    drop_banned_users,
    drop_bot_users,
    drop_duplicates,
    drop_rare_items,
    drop_short_sequences,
    read_banned_ids,
    truncate_sequences,
)
from segue.settings import DataSettings


def interactions(rows: list[tuple], timed: bool = True) -> pd.DataFrame:
    """Rows of (sequence, item, position, timestamp, rating)."""
    frame = pd.DataFrame(rows, columns=["sequence", "item", "position", "timestamp", "rating"])
    frame["timestamp"] = frame["timestamp"].astype("Int64")
    frame["rating"] = frame["rating"].astype("float64")
    return frame


def test_implicit_threshold_keeps_ratings_at_or_above_it_and_unrated_rows() -> None:
    frame = interactions(
        [
            ("u1", 1, 0, 10, 5.0),
            ("u1", 2, 1, 11, 3.0),
            ("u1", 3, 2, 12, 2.5),
            ("p1", 4, 0, None, None),
        ]
    )
    kept, dropped = apply_implicit_threshold(frame, 3.0)
    assert kept["item"].tolist() == [1, 2, 4]
    assert dropped["item"].tolist() == [3]
    assert dropped["reason"].iloc[0] == "rating below the implicit threshold 3"


def test_banned_users_lose_every_interaction() -> None:
    frame = interactions([("u1", 1, 0, 1, 5.0), ("u2", 1, 0, 1, 5.0), ("u2", 2, 1, 2, 5.0)])
    kept, dropped = drop_banned_users(frame, {"u2", "nobody"})
    assert kept["sequence"].tolist() == ["u1"]
    assert len(dropped) == 2
    assert set(dropped["reason"]) == {"user or playlist is banned"}


def test_bot_rule_flags_more_than_n_interactions_inside_the_window() -> None:
    # u_bot: 4 ratings within 3 s (> 3 in a 60 s window); u_fast: 3 ratings fast, then a pause.
    rows = [("u_bot", item, item, 100 + item, 4.0) for item in range(4)]
    rows += [("u_fast", item, item, 100 + item, 4.0) for item in range(3)]
    rows += [("u_fast", 9, 3, 1000, 4.0), ("p_untimed", 1, 0, None, None)]
    frame = interactions(rows)
    kept, dropped = drop_bot_users(frame, max_interactions=3, window_seconds=60)
    assert set(dropped["sequence"]) == {"u_bot"}
    assert len(dropped) == 4
    assert len(kept) == 5


def test_bot_window_is_half_open() -> None:
    # Two interactions exactly 60 s apart do not fit inside a 60-second window.
    frame = interactions([("u", 1, 0, 0, 4.0), ("u", 2, 1, 60, 4.0)])
    assert len(drop_bot_users(frame, 1, 60)[1]) == 0
    assert len(drop_bot_users(frame, 1, 61)[1]) == 2


def test_bot_rule_is_off_at_zero() -> None:
    frame = interactions([("u", item, item, 0, 4.0) for item in range(50)])
    assert len(drop_bot_users(frame, 0, 60)[1]) == 0


def test_duplicates_keep_the_first_in_sequence_order() -> None:
    # Rows out of order on purpose: position, not row order, decides which repeat is first.
    frame = interactions(
        [("u1", 7, 2, 30, 4.0), ("u1", 7, 0, 10, 3.0), ("u1", 8, 1, 20, 4.0), ("u2", 7, 0, 5, 4.0)]
    )
    kept, dropped = drop_duplicates(frame)
    assert len(kept) == 3
    assert dropped[["sequence", "item", "position"]].values.tolist() == [["u1", 7, 2]]


def test_truncation_keeps_the_first_items_of_each_sequence() -> None:
    frame = interactions([("p", item, 4 - item, None, None) for item in range(5)])
    kept, dropped = truncate_sequences(frame, 2)
    assert sorted(kept["position"].tolist()) == [0, 1]
    assert len(dropped) == 3


def test_rare_items_are_dropped() -> None:
    frame = interactions([("a", 1, 0, 1, 4.0), ("b", 1, 0, 1, 4.0), ("b", 2, 1, 2, 4.0)])
    kept, dropped = drop_rare_items(frame, 2)
    assert kept["item"].tolist() == [1, 1]
    assert dropped["item"].tolist() == [2]
    assert drop_rare_items(frame, 1)[1].empty


def test_short_sequences_are_dropped() -> None:
    frame = interactions([("a", 1, 0, 1, 4.0), ("b", 1, 0, 1, 4.0), ("b", 2, 1, 2, 4.0)])
    kept, dropped = drop_short_sequences(frame, 2)
    assert kept["sequence"].tolist() == ["b", "b"]
    assert dropped["sequence"].tolist() == ["a"]


def test_rules_carry_extra_columns_and_do_not_modify_the_input() -> None:
    frame = interactions([("a", 1, 0, 1, 4.0), ("a", 1, 1, 2, 4.0)]).assign(line=[2, 3])
    before = frame.copy()
    kept, dropped = drop_duplicates(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert kept["line"].tolist() == [2]
    assert dropped["line"].tolist() == [3]


def test_read_banned_ids_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "banned.txt"
    path.write_text("# abusive accounts\nu1\n\n  u2  \n", encoding="utf-8")
    assert read_banned_ids(path) == {"u1", "u2"}
    assert read_banned_ids(None) == set()


def test_popularity_and_length_repeat_until_both_hold() -> None:
    """min_item_count=2, min_sequence_length=2.

    Round 1: item 9 appears once -> dropped; playlist c is left with one song -> dropped.
    Item 3 now appears only in d -> round 2 drops it, and d falls to one song -> dropped.
    Round 3 changes nothing.
    """
    frame = interactions(
        [
            ("a", 1, 0, None, None), ("a", 2, 1, None, None),
            ("b", 1, 0, None, None), ("b", 2, 1, None, None),
            ("c", 3, 0, None, None), ("c", 9, 1, None, None),
            ("d", 3, 0, None, None), ("d", 1, 1, None, None),
        ]
    )  # fmt: skip
    settings = DataSettings(min_item_count=2, min_sequence_length=2)
    outcome = apply_rules(frame, settings)
    assert sorted(outcome.kept["sequence"].unique()) == ["a", "b"]
    assert len(outcome.kept) == 4
    assert outcome.rounds == 3
    by_stage = outcome.dropped.groupby("stage").size().to_dict()
    assert by_stage == {"min_item_count": 2, "min_sequence_length": 2}
    assert outcome.dropped_sequences["min_sequence_length"] == ["c", "d"]
    kept_items = set(outcome.kept["item"])
    counts = outcome.kept["item"].value_counts()
    assert kept_items == {1, 2} and counts.min() >= 2


def test_apply_rules_counts_every_stage_and_empty_sequences() -> None:
    frame = interactions(
        [
            ("u1", 1, 0, 10, 5.0), ("u1", 2, 1, 20, 1.0), ("u1", 3, 2, 30, 4.0),
            ("u1", 3, 3, 40, 4.0), ("banned", 1, 0, 10, 5.0), ("u3", 1, 0, 10, 5.0),
        ]
    )  # fmt: skip
    settings = DataSettings(min_sequence_length=2)
    outcome = apply_rules(
        frame, settings, banned={"banned"}, sequence_ids=["u1", "banned", "u3", "empty"]
    )
    assert [stage["stage"] for stage in outcome.stages] == list(RULE_ORDER)
    after = {stage["stage"]: stage["after"] for stage in outcome.stages}
    assert after["banned_users"] == {"interactions": 5, "sequences": 3, "items": 3}
    assert after["implicit_threshold"]["interactions"] == 4
    assert after["duplicates"]["interactions"] == 3
    assert after["min_sequence_length"] == {"interactions": 2, "sequences": 1, "items": 2}
    assert outcome.dropped_sequences == {
        "banned_users": ["banned"],
        "bot_users": [],
        "min_sequence_length": ["u3", "empty"],
    }
    assert len(outcome.kept) + len(outcome.dropped) == len(frame)


@pytest.mark.parametrize("drop", [True, False])
def test_duplicates_setting_turns_the_rule_off(drop: bool) -> None:
    frame = interactions([("u", 1, 0, 1, 4.0), ("u", 1, 1, 2, 4.0), ("u", 2, 2, 3, 4.0)])
    outcome = apply_rules(frame, DataSettings(drop_duplicates=drop))
    assert len(outcome.kept) == (2 if drop else 3)
    assert np.all(outcome.dropped["stage"] == "duplicates")
