"""The monitoring report on a small event log whose every figure is computed by hand below."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from segue.monitoring.report import (
    CatalogueView,
    ReportOptions,
    VersionContext,
    banned_item_keys,
    build_report,
    summarise,
)
from segue.ranking.ban_list import parse_ban_list

DAY = "2026-11-30"
SINCE = datetime(2026, 11, 30, 9, tzinfo=UTC)
UNTIL = datetime(2026, 11, 30, 12, tzinfo=UTC)


def at(clock: str) -> pd.Timestamp:
    return pd.Timestamp(f"{DAY}T{clock}", tz="UTC")


@dataclass
class Log:
    lists: pd.DataFrame
    items: pd.DataFrame
    feedback: pd.DataFrame


# Catalogue k0..k5 by artists A A B B C C, training counts 5 4 3 2 1 0.
CATALOGUE = CatalogueView(
    np.array([f"k{i}" for i in range(6)], dtype=object),
    np.array(list("AABBCC"), dtype=object),
    np.array([5, 4, 3, 2, 1, 0]),
)
ARTIST = dict(zip(CATALOGUE.keys, CATALOGUE.artists, strict=True))


def _list(rid, clock, task, version, inputs, size, unmatched, served, fallback=None, known=None):
    return {
        "recommendation_id": rid,
        "served_at": at(clock),
        "task": task,
        "route": "/v1/next-songs" if task == "next-song" else "/v1/users/{user_id}/recommendations",
        "model_name": f"dev.segue-{task}",
        "model_version": version,
        "algorithm": "markov" if task == "next-song" else "ease",
        "k": 3,
        "user_id": None if task == "next-song" else "u1",
        "input_size": size,
        "unmatched": unmatched,
        "fallback": fallback,
        "n_items": len(served),
        "removed_ban_list": 0,
        "removed_excluded": 0,
        "removed_seen": 0,
        "removed_artist_cap": 0,
        "latency_ms": {"r1": 10.0, "r2": 20.0, "r3": 30.0, "r4": 40.0}[rid],
        "input_items": inputs,
        "known_user": known,
    }


SERVED = {
    "r1": ["k2", "k3", "k4"],
    "r2": ["k0", "k1", "k2"],  # k2 was one of r2's inputs: an excluded item served
    "r3": ["k0", "k0"],  # a duplicate, and shorter than k = 3
    "r4": ["k5", "k4", "k3"],
}


def event_log() -> Log:
    lists = pd.DataFrame(
        [
            _list("r1", "10:00", "next-song", "1", ["k0", "k1"], 2, 0, SERVED["r1"]),
            _list("r2", "10:05", "next-song", "1", ["k2", "k3"], 3, 1, SERVED["r2"]),
            _list("r3", "10:10", "next-song", "1", [], 1, 1, SERVED["r3"], "no known songs"),
            _list("r4", "10:15", "user-items", "2", ["k0"], 4, 0, SERVED["r4"], known=True),
        ]
    )
    items = pd.DataFrame(
        [
            {
                "recommendation_id": rid,
                "served_at": lists.set_index("recommendation_id").at[rid, "served_at"],
                "task": "next-song" if rid != "r4" else "user-items",
                "model_version": "1" if rid != "r4" else "2",
                "user_id": None,
                "item": key,
                "artist": ARTIST[key],
                "score": 1.0 / position,
                "position": position,
            }
            for rid, keys in SERVED.items()
            for position, key in enumerate(keys, start=1)
        ]
    )
    rows = [
        *(("r1", key, "impression", None, "10:00:30") for key in SERVED["r1"]),
        ("r1", "k3", "click", None, "10:01"),  # position 2, looked up in the served list
        ("r1", "k3", "play", 2, "10:02"),
        *(("r2", key, "impression", pos, "10:05:30") for pos, key in enumerate(SERVED["r2"], 1)),
        ("r2", "k0", "click", 1, "10:06"),
        ("r2", "k1", "click", 2, "10:07"),
        ("zz", "k1", "click", None, "10:20"),  # an unknown list: unattributed
        ("r1", "k2", "click", 1, "11:00"),  # 60 minutes late: unattributed
    ]
    feedback = pd.DataFrame(
        [
            {
                "recommendation_id": rid,
                "item": key,
                "type": kind,
                "position": position,
                "timestamp": at(clock),
                "received_at": at(clock),
            }
            for rid, key, kind, position, clock in rows
        ]
    )
    feedback["position"] = feedback["position"].astype("Int32")
    return Log(lists, items, feedback)


OPTIONS = ReportOptions(k=3, attribution_window=timedelta(minutes=30))
BANNED = frozenset({"k4"})


def _report(**kwargs) -> dict:
    versions = {
        ("next-song", "1"): VersionContext(CATALOGUE, None, BANNED),
        ("user-items", "2"): VersionContext(CATALOGUE, None, BANNED),
    }
    return build_report(
        event_log(), since=SINCE, until=UNTIL, options=OPTIONS, versions=versions, **kwargs
    )


def _group(report: dict, task: str) -> dict:
    return next(group for group in report["groups"] if group["task"] == task)


def test_service_section() -> None:
    service = _group(_report(), "next-song")["service"]
    assert service["lists_served"] == 3
    assert service["fallback_rate"] == pytest.approx(1 / 3)
    assert service["fallback_by_reason"] == {"no known songs": pytest.approx(1 / 3)}
    assert service["unmatched_input_rate"] == pytest.approx(2 / 6)  # (0 + 1 + 1) / (2 + 3 + 1)
    assert service["latency_p50_ms"] == 20.0
    assert service["latency_p99_ms"] == pytest.approx(20 + 0.98 * 10)


def test_online_outcomes() -> None:
    report = _report()
    outcomes = _group(report, "next-song")["outcomes"]
    assert outcomes["impressions"] == 6
    assert outcomes["clicks"] == 3  # r1 k3, r2 k0, r2 k1; the late click does not count
    assert outcomes["click_through_rate"] == pytest.approx(3 / 6)
    assert outcomes["play_rate"] == pytest.approx(1 / 6)
    assert outcomes["acceptance_rate"] == 1.0  # both impressed lists got a click
    assert outcomes["mrr_first_click"] == pytest.approx((1 / 2 + 1 / 1) / 2)
    by_position = {row["position"]: row for row in outcomes["by_position"]}
    assert by_position[1]["click_through_rate"] == pytest.approx(0.5)
    assert by_position[2]["click_through_rate"] == 1.0
    assert by_position[3]["click_through_rate"] == 0.0
    assert by_position[2]["play_rate"] == pytest.approx(0.5)
    assert report["totals"]["unattributed_feedback"] == 2
    user_items = _group(report, "user-items")["outcomes"]
    assert user_items["impressions"] == 0 and user_items["click_through_rate"] is None


def test_guardrails_and_their_alerts() -> None:
    report = _report()
    guardrails = _group(report, "next-song")["guardrails"]
    assert guardrails["banned_items_served"] == 1  # k4 in r1
    assert guardrails["excluded_items_served"] == 1  # k2 in r2
    assert guardrails["duplicate_items"] == 1  # k0 twice in r3
    assert guardrails["short_lists"] == pytest.approx(1 / 3)
    assert guardrails["artist_concentration_mean"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert guardrails["artist_concentration_max"] == 1.0
    fired = {(alert["task"], alert["check"]) for alert in report["alerts"]}
    assert fired == {
        ("next-song", "banned_items_served"),
        ("next-song", "excluded_items_served"),
        ("next-song", "duplicate_items"),
        ("next-song", "short_lists"),
        ("user-items", "banned_items_served"),
    }


def _excluding_log(excluded: list[str]) -> Log:
    """One next-song list: inputs k0, the request's ``exclude`` list ``excluded``, k2 k3 k4 served."""
    row = _list("r1", "10:00", "next-song", "1", ["k0"], 1, 0, ["k2", "k3", "k4"])
    lists = pd.DataFrame([{**row, "excluded_items": excluded}])
    items = pd.DataFrame(
        [
            {**{key: row[key] for key in ("recommendation_id", "served_at", "task", "user_id")},
             "model_version": "1", "item": key, "artist": ARTIST[key], "score": 1.0,
             "position": position}
            for position, key in enumerate(["k2", "k3", "k4"], start=1)
        ]
    )  # fmt: skip
    return Log(lists, items, event_log().feedback.iloc[:0])


@pytest.mark.parametrize(
    ("excluded", "served"),
    [(["k3", "k0"], 1), (["k0", "k5"], 0), ([], 0)],  # k3 was served; k0 is an input too
)
def test_items_of_the_requests_exclude_list_that_were_served(excluded, served) -> None:
    report = build_report(_excluding_log(excluded), since=SINCE, until=UNTIL, options=OPTIONS)
    assert _group(report, "next-song")["guardrails"]["excluded_items_served"] == served
    [check] = [c for c in report["checks"] if c["check"] == "excluded_items_served"]
    assert check["value"] == served and check["alert"] is bool(served)
    fired = {alert["check"] for alert in report["alerts"]}
    assert ("excluded_items_served" in fired) is bool(served)


def test_artist_cap_guardrail_when_a_cap_is_set() -> None:
    options = ReportOptions(k=3, max_per_artist=1)
    report = build_report(event_log(), since=SINCE, until=UNTIL, options=options)
    # r1 (B B C), r2 (A A B), r3 (A A) each hold two songs of one artist
    assert _group(report, "next-song")["guardrails"]["artist_cap_exceeded"] == 3


def test_output_health() -> None:
    health = _group(_report(), "next-song")["output_health"]
    assert health["catalogue_coverage"] == pytest.approx(5 / 6)
    # exposure [3, 1, 2, 1, 1, 0]: sorted 0 1 1 1 2 3, sum i*x = 37, total 8
    assert health["exposure_gini"] == pytest.approx(2 * 37 / (6 * 8) - 7 / 6)
    # lists {2,3,4}, {0,1,2}, {0}: overlaps 1, 0, 1 over 3 pairs, / k = 3
    assert health["personalization"] == pytest.approx(1 - 2 / 9)
    assert health["intra_list_artist_diversity"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    # percentiles k0..k5 = 1, .8, .6, .4, .2, 0 over the shown 2 3 4 0 1 2 0 0
    assert health["mean_popularity_percentile"] == pytest.approx(5.6 / 8)
    shown = [2, 3, 4, 0, 1, 2, 0, 0]
    counts = [5, 4, 3, 2, 1, 0]
    bits = [-math.log2((counts[i] + 1) / (15 + 6)) for i in shown]
    assert health["novelty_bits"] == pytest.approx(sum(bits) / len(bits))
    assert health["lorenz"]["exposure"][0] == 0.0 and health["lorenz"]["exposure"][-1] == 1.0


def test_without_a_catalogue_only_served_items_are_known() -> None:
    report = build_report(event_log(), since=SINCE, until=UNTIL, options=OPTIONS)
    health = _group(report, "next-song")["output_health"]
    assert health["catalogue_coverage"] is None and health["novelty_bits"] is None
    assert health["distinct_items"] == 5
    assert "not tested" in _group(report, "next-song")["drift"]["message"]


def test_drift_is_reported_per_version_with_its_reference() -> None:
    reference = {
        "history_length": {"sample": [1, 2, 3]},
        "input_popularity": {"bins": 10, "shares": [0.1] * 10},
        "unknown_item_rate": 0.0,
        "new_user_rate": None,
        "n_interactions": 100,
        "n_sequences": 10,
    }
    versions = {("next-song", "1"): VersionContext(CATALOGUE, reference, BANNED)}
    report = build_report(event_log(), since=SINCE, until=UNTIL, options=OPTIONS, versions=versions)
    drift = _group(report, "next-song")["drift"]
    assert set(drift) >= {"history_length", "unknown_item_rate", "input_popularity", "new_users"}
    assert "fewer than 30" in drift["history_length"]["message"]  # three lists are no evidence
    assert drift["histograms"]["history_length"]["current"] == [2, 3, 1]
    names = {check["check"] for check in report["checks"] if check["task"] == "next-song"}
    assert "drift_history_length" in names


def test_task_filter_and_empty_window() -> None:
    only = _report(task="user-items")
    assert [group["task"] for group in only["groups"]] == ["user-items"]
    empty = build_report(
        event_log(),
        since=datetime(2026, 12, 1, tzinfo=UTC),
        until=datetime(2026, 12, 2, tzinfo=UTC),
        options=OPTIONS,
    )
    assert empty["empty"] and empty["groups"] == [] and empty["alerts"] == []
    assert empty["message"].startswith("no lists served and no feedback")


def test_banned_item_keys_by_key_and_by_artist() -> None:
    ban_list = parse_ban_list("k1\nartist:C\n")
    keys = banned_item_keys(ban_list, CATALOGUE.keys, np.array(["a", "a", "b", "b", "c", "c"]))
    assert keys == {"k1", "k4", "k5"}


def test_series_counts_lists_and_feedback_per_minute() -> None:
    series = _report()["series"]
    assert series["bucket"] == "minute"  # the traffic lasted 60 minutes
    assert sum(series["lists"].values()) == 4
    assert sum(series["feedback"]["click"].values()) == 5


def test_summarise_for_the_page() -> None:
    check = {
        "checked_at": "2026-11-30T12:00:00+00:00",
        "status": "alert",
        "checks": [
            {"check": "drift_history_length", "kind": "drift", "alert": True, "value": 0.5},
            {"check": "duplicate_items", "kind": "guardrail", "alert": False, "value": 0.0},
        ],
    }
    summary = summarise(
        event_log(),
        since=SINCE,
        until=UNTIL,
        k=3,
        check=check,
        catalogue_sizes={"next-song": 6},
    )
    next_song = summary["tasks"]["next-song"]
    assert next_song["lists_served"] == 3
    assert next_song["click_through_rate"] == pytest.approx(0.5)
    assert next_song["coverage"] == pytest.approx(5 / 6)
    assert next_song["guardrails"]["duplicate_items"] == 1
    assert summary["unattributed_feedback"] == 2
    assert [alert["check"] for alert in summary["alerts"]] == ["drift_history_length"]
    assert summary["status"] == "alert"
    assert set(summary["tasks"]) == {"next-song", "user-items"}


def test_items_without_artists_have_no_artist_figures() -> None:
    log = event_log()
    log.items["artist"] = ""  # movies
    report = build_report(log, since=SINCE, until=UNTIL, options=OPTIONS)
    group = _group(report, "next-song")
    assert group["guardrails"]["artist_concentration_mean"] is None
    assert group["output_health"]["intra_list_artist_diversity"] is None
