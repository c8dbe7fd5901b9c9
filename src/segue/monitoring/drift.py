"""Input drift: the traffic a model answers against the data it was trained on.

The training side is summarised once, when a model is packaged, into a *reference profile*
(``reference.json`` in the package; see :func:`reference_profile`), so a report never needs the
training data. Four inputs are compared, each with a named test and a threshold from
``[monitoring]``; a check alerts only when its effect is above the threshold AND its p-value is
below ``monitoring.drift_p_value`` (a large effect on a handful of lists is not evidence):

================== ================================================ ==========================
check              measured per served list                         test (effect)
================== ================================================ ==========================
history_length     input size (songs sent, or the user's history)   two-sample Kolmogorov-
                                                                    Smirnov (statistic D)
unknown_item_rate  inputs that matched no catalogue item / inputs   chi-square 2x2 (rise of
                                                                    the rate, absolute)
input_popularity   popularity percentile of every matched input     PSI over 10 percentile
                   item (1 = the most popular item)                 bins (chi-square p-value)
new_users          lists asked for a user id the model did not      chi-square 2x2 (rise of
                   know                                             the share, absolute)
================== ================================================ ==========================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from segue.data.interactions import Interactions
from segue.evaluation.metrics import popularity_percentiles
from segue.settings import MonitoringSettings

REFERENCE_FORMAT = 1
POPULARITY_BINS = 10
REFERENCE_SAMPLE_SIZE = 5000
PSI_FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite
DRIFT_CHECKS = ("history_length", "unknown_item_rate", "input_popularity", "new_users")


# -- the training side ------------------------------------------------------------------------


def reference_profile(
    task: str, sequences: Interactions, item_counts: np.ndarray, *, seed: int = 0
) -> dict[str, Any]:
    """What the report compares traffic with, from the histories a model was trained on.

    Traffic is modelled on how each task is asked: a next-song client sends every prefix of a
    playlist as it grows (prefix lengths 1..L-1; an item at position p is sent in L-1-p
    requests), a user-items client sends (or is known by) one whole history. ``item_counts``
    is the catalogue's ``count`` column in item order: input popularity percentiles are taken
    from it, the same way the report takes them from the package's catalogue.
    """
    lengths = np.fromiter((len(s) for s in sequences.sequences), np.int64, len(sequences))
    percentiles = popularity_percentiles(np.asarray(item_counts))
    if task == "next-song":
        request_lengths = np.concatenate([np.arange(1, n) for n in lengths if n > 1] or [[]])
        weights = [np.arange(n - 1, 0, -1) for n in lengths if n > 1]
        items = [s[:-1] for s in sequences.sequences if len(s) > 1]
    else:
        request_lengths = lengths
        weights = [np.ones(len(s), dtype=np.int64) for s in sequences.sequences]
        items = list(sequences.sequences)
    flat_items = np.concatenate(items).astype(np.int64) if items else np.empty(0, np.int64)
    flat_weights = np.concatenate(weights).astype(np.float64) if weights else np.empty(0)
    rng = np.random.default_rng(seed)
    sample = np.asarray(request_lengths, dtype=np.int64)
    if len(sample) > REFERENCE_SAMPLE_SIZE:
        sample = np.sort(rng.choice(sample, size=REFERENCE_SAMPLE_SIZE, replace=False))
    return {
        "format": REFERENCE_FORMAT,
        "task": task,
        "n_sequences": len(sequences),
        "n_interactions": int(lengths.sum()),
        "history_length": {
            "sample": [int(value) for value in sample],
            "mean": float(np.mean(request_lengths)) if len(request_lengths) else 0.0,
        },
        "input_popularity": {
            "bins": POPULARITY_BINS,
            "shares": [float(s) for s in popularity_shares(percentiles[flat_items], flat_weights)],
        },
        # Every training input is a catalogue item, and every training user is known: traffic
        # is measured against these, so any rise is the traffic's.
        "unknown_item_rate": 0.0,
        "new_user_rate": 0.0 if task == "user-items" else None,
    }


def popularity_shares(
    percentiles: np.ndarray, weights: np.ndarray | None = None, bins: int = POPULARITY_BINS
) -> np.ndarray:
    """Share of (weighted) inputs in each of ``bins`` equal percentile bins over [0, 1]."""
    counts, _ = np.histogram(percentiles, bins=bins, range=(0.0, 1.0), weights=weights)
    total = counts.sum()
    return counts / total if total else np.zeros(bins)


# -- tests and distances ----------------------------------------------------------------------


def population_stability_index(
    expected: Sequence[float], actual: Sequence[float], floor: float = PSI_FLOOR
) -> float:
    """PSI = sum over bins of (actual - expected) * ln(actual / expected), shares floored."""
    e = np.clip(np.asarray(expected, dtype=np.float64), floor, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), floor, None)
    return float(((a - e) * np.log(a / e)).sum())


def two_proportion_z_test(
    successes: int, trials: int, baseline_successes: int, baseline_trials: int
) -> tuple[float, float]:
    """Pooled two-proportion z-test of a DROP from the baseline: (z, one-sided p-value).

    z = (p - p0) / sqrt(P (1 - P) (1/n + 1/n0)) with P the pooled proportion; the p-value is
    P(Z <= z), small when the current proportion is significantly below the baseline.
    """
    from scipy.stats import norm

    if trials <= 0 or baseline_trials <= 0:
        raise ValueError("both windows need at least one trial")
    current, baseline = successes / trials, baseline_successes / baseline_trials
    pooled = (successes + baseline_successes) / (trials + baseline_trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / baseline_trials))
    if spread == 0:
        return 0.0, 1.0 if current >= baseline else 0.0
    z = (current - baseline) / spread
    return float(z), float(norm.cdf(z))


@dataclass(frozen=True)
class DriftThresholds:
    """The ``[monitoring]`` thresholds of the drift checks."""

    history_length_ks: float = 0.2
    unknown_item_rate: float = 0.1
    input_popularity_psi: float = 0.2
    new_users: float = 0.2
    p_value: float = 0.01
    min_lists: int = 30

    @classmethod
    def from_settings(cls, monitoring: MonitoringSettings) -> DriftThresholds:
        return cls(
            monitoring.drift_history_length_ks,
            monitoring.drift_unknown_item_rate,
            monitoring.drift_input_popularity_psi,
            monitoring.drift_new_users,
            monitoring.drift_p_value,
            monitoring.drift_min_lists,
        )


@dataclass(frozen=True)
class DriftResult:
    """One drift check: the test, its statistic and p-value, the effect compared with the
    threshold (KS D, the rise of a rate, or PSI), and the verdict."""

    check: str
    test: str
    effect: float | None
    statistic: float | None
    p_value: float | None
    threshold: float
    alert: bool
    reference: float | None
    current: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ks_drift(
    check: str, reference: Sequence[float], current: Sequence[float], threshold: float, alpha: float
) -> DriftResult:
    """Two-sample Kolmogorov-Smirnov: D = the largest gap between the two empirical CDFs."""
    from scipy.stats import ks_2samp

    test = "two-sample Kolmogorov-Smirnov"
    if not len(reference) or not len(current):
        return _untested(check, test, threshold, "no values on one side")
    result = ks_2samp(np.asarray(reference, float), np.asarray(current, float))
    statistic, p_value = float(result.statistic), float(result.pvalue)
    alert = statistic > threshold and p_value < alpha
    return DriftResult(
        check,
        test,
        statistic,
        statistic,
        p_value,
        threshold,
        alert,
        float(np.mean(reference)),
        float(np.mean(current)),
        f"KS D={statistic:.3f} (threshold {threshold}), p={p_value:.2g}; "
        f"mean {np.mean(reference):.1f} -> {np.mean(current):.1f}",
    )


def rate_drift(
    check: str,
    reference_rate: float,
    reference_trials: int,
    events: int,
    trials: int,
    threshold: float,
    alpha: float,
) -> DriftResult:
    """Chi-square test of a 2x2 table (reference vs current, event vs not), no continuity
    correction; the effect is the rise of the rate, current minus reference."""
    from scipy.stats import chi2_contingency

    test = "chi-square 2x2"
    if trials <= 0 or reference_trials <= 0:
        return _untested(check, test, threshold, "no inputs on one side")
    reference_events = reference_rate * reference_trials
    table = np.array(
        [[reference_events, reference_trials - reference_events], [events, trials - events]]
    )
    rate = events / trials
    if (table.sum(axis=0) == 0).any():
        statistic, p_value = 0.0, 1.0
    else:
        outcome = chi2_contingency(table, correction=False)
        statistic, p_value = float(outcome.statistic), float(outcome.pvalue)
    rise = rate - reference_rate
    alert = rise > threshold and p_value < alpha
    return DriftResult(
        check,
        test,
        rise,
        statistic,
        p_value,
        threshold,
        alert,
        reference_rate,
        rate,
        f"rate {reference_rate:.3f} -> {rate:.3f} (rise {rise:+.3f}, threshold {threshold}), "
        f"chi2={statistic:.1f}, p={p_value:.2g}",
    )


def psi_drift(
    check: str,
    reference_shares: Sequence[float],
    reference_total: int,
    current_shares: Sequence[float],
    current_total: int,
    threshold: float,
    alpha: float,
) -> DriftResult:
    """PSI over the percentile bins; its p-value is a chi-square test of the two histograms."""
    from scipy.stats import chi2_contingency

    test = "population stability index"
    if current_total <= 0 or reference_total <= 0 or not sum(reference_shares):
        return _untested(check, test, threshold, "no inputs on one side")
    psi = population_stability_index(reference_shares, current_shares)
    table = np.array(
        [np.asarray(reference_shares) * reference_total, np.asarray(current_shares) * current_total]
    )
    table = table[:, table.sum(axis=0) > 0]
    p_value = float(chi2_contingency(table, correction=False).pvalue) if table.shape[1] > 1 else 1.0
    alert = psi > threshold and p_value < alpha
    reference_mean = _bin_mean(reference_shares)
    current_mean = _bin_mean(current_shares)
    return DriftResult(
        check,
        test,
        psi,
        psi,
        p_value,
        threshold,
        alert,
        reference_mean,
        current_mean,
        f"PSI={psi:.3f} (threshold {threshold}), p={p_value:.2g}; mean percentile "
        f"{reference_mean:.2f} -> {current_mean:.2f}",
    )


def _bin_mean(shares: Sequence[float]) -> float:
    shares = np.asarray(shares, dtype=np.float64)
    centres = (np.arange(len(shares)) + 0.5) / len(shares)
    return float((shares * centres).sum() / shares.sum()) if shares.sum() else 0.0


def _untested(check: str, test: str, threshold: float, why: str) -> DriftResult:
    return DriftResult(
        check, test, None, None, None, threshold, False, None, None, f"not tested: {why}"
    )


# -- the serving side -------------------------------------------------------------------------


def input_drift(
    reference: Mapping[str, Any],
    lists: pd.DataFrame,
    percentile_of: Mapping[str, float],
    thresholds: DriftThresholds,
) -> dict[str, DriftResult]:
    """Every drift check of one model version's served ``lists`` (event-log rows) against its
    reference profile. ``percentile_of`` maps a catalogue key to its popularity percentile."""
    checks = {}
    if len(lists) < thresholds.min_lists:
        why = f"{len(lists)} lists in the window, fewer than {thresholds.min_lists}"
        tests = {
            "history_length": ("two-sample Kolmogorov-Smirnov", thresholds.history_length_ks),
            "unknown_item_rate": ("chi-square 2x2", thresholds.unknown_item_rate),
            "input_popularity": ("population stability index", thresholds.input_popularity_psi),
            "new_users": ("chi-square 2x2", thresholds.new_users),
        }
        return {name: _untested(name, test, limit, why) for name, (test, limit) in tests.items()}
    alpha = thresholds.p_value
    sizes = lists["input_size"].to_numpy(np.float64)
    checks["history_length"] = ks_drift(
        "history_length",
        reference["history_length"]["sample"],
        sizes,
        thresholds.history_length_ks,
        alpha,
    )
    checks["unknown_item_rate"] = rate_drift(
        "unknown_item_rate",
        float(reference.get("unknown_item_rate") or 0.0),
        int(reference.get("n_interactions", 0)),
        int(lists["unmatched"].sum()),
        int(sizes.sum()),
        thresholds.unknown_item_rate,
        alpha,
    )
    inputs = [key for keys in lists["input_items"] if keys is not None for key in keys]
    known = np.array([percentile_of[k] for k in inputs if k in percentile_of], dtype=np.float64)
    shares = popularity_shares(known, bins=int(reference["input_popularity"]["bins"]))
    checks["input_popularity"] = psi_drift(
        "input_popularity",
        reference["input_popularity"]["shares"],
        int(reference.get("n_interactions", 0)),
        shares,
        len(known),
        thresholds.input_popularity_psi,
        alpha,
    )
    # Only lists asked for a user id say whether the model knew the user: a history sent
    # without an id is no user at all.
    by_id = lists[lists["user_id"].notna()] if "user_id" in lists else lists.iloc[:0]
    known_user = by_id["known_user"].dropna() if "known_user" in by_id else pd.Series([])
    if reference.get("new_user_rate") is None or not len(known_user):
        checks["new_users"] = _untested(
            "new_users", "chi-square 2x2", thresholds.new_users, "no lists for a user id"
        )
    else:
        checks["new_users"] = rate_drift(
            "new_users",
            float(reference["new_user_rate"]),
            int(reference.get("n_sequences", 0)),
            int((~known_user.astype(bool)).sum()),
            len(known_user),
            thresholds.new_users,
            alpha,
        )
    return checks
