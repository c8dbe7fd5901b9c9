"""Business rules: small pure functions from an interactions frame to (kept, dropped).

Every rule takes a frame with the columns ``sequence`` (playlist or user id), ``item``,
``position`` (order inside the sequence), ``timestamp`` (seconds, may be null) and ``rating``
(may be null), plus any other columns, which it carries along untouched. It returns the kept rows
and the dropped rows with one more column, ``reason``. No rule reads files or settings.

``apply_rules`` runs them in ``RULE_ORDER``:

1. ``banned_users``: abusive users or playlists go first, so no other rule is charged with them.
2. ``bot_users``: judged on the raw activity, low ratings included, because a bot is a bot
   whatever it rated; rows without timestamps (playlists) are never bots.
3. ``implicit_threshold``: ratings below the threshold are not positive feedback; rows without a
   rating (playlist songs) always pass.
4. ``duplicates``: the first (user, item) pair in sequence order stays, so repeats cannot
   inflate the popularity counted next.
5. ``max_sequence_length``: long sequences are cut to their first N items before popularity is
   counted, so counts describe exactly what the models will see.
6. ``min_item_count`` and ``min_sequence_length`` repeat until both hold: dropping rare items
   can make a sequence too short, and dropping a short sequence can make an item rare. The
   result is the largest subset where every item and every sequence meets its minimum (a k-core);
   each drop is charged to the rule that made it, whichever round it happened in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from segue.settings import DataSettings

RuleResult = tuple[pd.DataFrame, pd.DataFrame]

RULE_ORDER = (
    "banned_users",
    "bot_users",
    "implicit_threshold",
    "duplicates",
    "max_sequence_length",
    "min_item_count",
    "min_sequence_length",
)
# Rules that drop whole sequences (playlists or users) rather than single interactions.
SEQUENCE_RULES = ("banned_users", "bot_users", "min_sequence_length")


def _split(frame: pd.DataFrame, drop: np.ndarray | pd.Series, reason: str) -> RuleResult:
    mask = np.asarray(drop, dtype=bool)
    dropped = frame[mask].assign(reason=reason)
    return frame[~mask], dropped


def apply_implicit_threshold(frame: pd.DataFrame, threshold: float) -> RuleResult:
    """Keep ratings >= ``threshold`` as positive feedback; rows without a rating are kept."""
    rating = frame["rating"].to_numpy(dtype=np.float64, na_value=np.nan)
    return _split(frame, rating < threshold, f"rating below the implicit threshold {threshold:g}")


def drop_banned_users(frame: pd.DataFrame, banned: Collection[str]) -> RuleResult:
    """Drop every interaction of a banned user or playlist."""
    if not banned:
        return _split(frame, np.zeros(len(frame), dtype=bool), "")
    return _split(
        frame, frame["sequence"].isin(list(banned)).to_numpy(), "user or playlist is banned"
    )


def find_bot_users(frame: pd.DataFrame, max_interactions: int, window_seconds: int) -> set:
    """Sequences with more than ``max_interactions`` interactions inside ``window_seconds``:
    some N+1 of their timestamps span less than the window."""
    if max_interactions <= 0:
        return set()
    timed = frame.loc[frame["timestamp"].notna(), ["sequence", "timestamp"]]
    if len(timed) <= max_interactions:
        return set()
    ordered = timed.sort_values(["sequence", "timestamp"], kind="stable")
    sequences = ordered["sequence"].to_numpy()
    stamps = ordered["timestamp"].to_numpy(dtype=np.int64)
    step = max_interactions
    same_sequence = sequences[step:] == sequences[:-step]
    burst = same_sequence & (stamps[step:] - stamps[:-step] < window_seconds)
    return set(pd.unique(sequences[step:][burst]))


def drop_bot_users(frame: pd.DataFrame, max_interactions: int, window_seconds: int) -> RuleResult:
    """Drop users who made more than ``max_interactions`` interactions within ``window_seconds``
    (0 turns the rule off)."""
    bots = find_bot_users(frame, max_interactions, window_seconds)
    reason = f"bot-like: more than {max_interactions} interactions within {window_seconds} s"
    return _split(frame, frame["sequence"].isin(list(bots)).to_numpy(), reason)


def _in_sequence_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["sequence", "position"], kind="stable")


def drop_duplicates(frame: pd.DataFrame) -> RuleResult:
    """Keep the first interaction with each item in a sequence; later repeats are dropped."""
    ordered = _in_sequence_order(frame)
    repeat = ordered.duplicated(["sequence", "item"], keep="first")
    repeat = repeat.reindex(frame.index).to_numpy()
    return _split(frame, repeat, "repeats an item already earlier in the same sequence")


def truncate_sequences(frame: pd.DataFrame, max_length: int) -> RuleResult:
    """Keep the first ``max_length`` interactions of every sequence."""
    reason = f"beyond the first {max_length} items of its sequence"
    longest = frame["sequence"].value_counts(sort=False).max() if len(frame) else 0
    if longest <= max_length:
        return _split(frame, np.zeros(len(frame), dtype=bool), reason)
    ordered = _in_sequence_order(frame)
    rank = ordered.groupby("sequence", sort=False, observed=True).cumcount()
    beyond = (rank.reindex(frame.index) >= max_length).to_numpy()
    return _split(frame, beyond, reason)


def drop_rare_items(frame: pd.DataFrame, min_count: int) -> RuleResult:
    """Drop interactions with items seen fewer than ``min_count`` times."""
    if min_count <= 1:
        return _split(frame, np.zeros(len(frame), dtype=bool), "")
    counts = frame.groupby("item", sort=False, observed=True)["item"].transform("size")
    return _split(
        frame, (counts < min_count).to_numpy(), f"item has fewer than {min_count} interactions"
    )


def drop_short_sequences(frame: pd.DataFrame, min_length: int) -> RuleResult:
    """Drop sequences with fewer than ``min_length`` interactions."""
    sizes = frame.groupby("sequence", sort=False, observed=True)["sequence"].transform("size")
    return _split(
        frame, (sizes < min_length).to_numpy(), f"sequence has fewer than {min_length} items"
    )


def read_banned_ids(path: str | Path | None) -> set[str]:
    """Ids from a text file, one per line; blank lines and lines starting with # are skipped."""
    if path is None:
        return set()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}


@dataclass
class RulesOutcome:
    """The kept rows, every dropped row with ``stage`` and ``reason``, and per-stage counts.

    ``dropped_sequences`` maps each sequence rule to the ids it dropped (a sequence left with
    no rows by other rules is dropped by ``min_sequence_length``). ``stages`` holds, per rule,
    the interactions, sequences and items before and after it.
    """

    kept: pd.DataFrame
    dropped: pd.DataFrame
    dropped_sequences: dict[str, list] = field(default_factory=dict)
    stages: list[dict] = field(default_factory=list)
    rounds: int = 0


def _sizes(frame: pd.DataFrame, sequences: int) -> dict[str, int]:
    return {
        "interactions": len(frame),
        "sequences": sequences,
        "items": int(frame["item"].nunique()),
    }


def _keep_all(frame: pd.DataFrame) -> RuleResult:
    return _split(frame, np.zeros(len(frame), dtype=bool), "")


def _single_pass_rules(
    settings: DataSettings, banned: Collection[str]
) -> list[tuple[str, Callable[[pd.DataFrame], RuleResult]]]:
    return [
        ("banned_users", partial(drop_banned_users, banned=banned)),
        (
            "bot_users",
            partial(
                drop_bot_users,
                max_interactions=settings.bot_max_interactions,
                window_seconds=settings.bot_window_seconds,
            ),
        ),
        (
            "implicit_threshold",
            partial(apply_implicit_threshold, threshold=settings.implicit_threshold),
        ),
        ("duplicates", drop_duplicates if settings.drop_duplicates else _keep_all),
        (
            "max_sequence_length",
            partial(truncate_sequences, max_length=settings.max_sequence_length),
        ),
    ]


def apply_rules(
    frame: pd.DataFrame,
    settings: DataSettings,
    banned: Collection[str] = (),
    sequence_ids: Iterable | None = None,
) -> RulesOutcome:
    """Run every rule in ``RULE_ORDER``; ``sequence_ids`` lists all sequences, including any with
    no rows, so that empty ones are counted and dropped by ``min_sequence_length``."""
    order = list(pd.unique(frame["sequence"])) if sequence_ids is None else list(sequence_ids)
    alive = set(order)
    banned_set = {str(identifier) for identifier in banned}
    dropped_parts: list[pd.DataFrame] = []
    dropped_sequences: dict[str, list] = {name: [] for name in SEQUENCE_RULES}
    stages: list[dict] = []

    current = frame
    for stage, rule in _single_pass_rules(settings, banned_set):
        before = _sizes(current, len(alive))
        current, dropped = rule(current)
        dropped_parts.append(dropped.assign(stage=stage))
        if stage in dropped_sequences:
            gone = set(pd.unique(dropped["sequence"])) - set(pd.unique(current["sequence"]))
            if stage == "banned_users":
                gone |= alive & banned_set
            gone &= alive
            dropped_sequences[stage] = [sequence for sequence in order if sequence in gone]
            alive -= gone
        stages.append({"stage": stage, "before": before, "after": _sizes(current, len(alive))})

    before_core = _sizes(current, len(alive))
    rare_parts: list[pd.DataFrame] = []
    short_parts: list[pd.DataFrame] = []
    rounds = 0
    while True:
        rounds += 1
        current, rare = drop_rare_items(current, settings.min_item_count)
        current, short = drop_short_sequences(current, settings.min_sequence_length)
        rare_parts.append(rare)
        short_parts.append(short)
        if short.empty:
            break
    rare_all = pd.concat(rare_parts)
    dropped_parts.append(rare_all.assign(stage="min_item_count"))
    dropped_parts.append(pd.concat(short_parts).assign(stage="min_sequence_length"))
    # An item is dropped whole by min_item_count in the round it turns rare, so the items left
    # after that rule are the ones it never touched.
    after_rare = {
        "interactions": before_core["interactions"] - len(rare_all),
        "sequences": len(alive),
        "items": before_core["items"] - int(rare_all["item"].nunique()),
    }
    stages.append({"stage": "min_item_count", "before": before_core, "after": after_rare})
    short_ids = alive - set(pd.unique(current["sequence"]))
    dropped_sequences["min_sequence_length"] = [s for s in order if s in short_ids]
    alive -= short_ids
    stages.append(
        {"stage": "min_sequence_length", "before": after_rare, "after": _sizes(current, len(alive))}
    )
    return RulesOutcome(current, pd.concat(dropped_parts), dropped_sequences, stages, rounds)
