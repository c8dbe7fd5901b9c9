"""The monitoring report: what was served, what happened after, and whether it was appropriate.

Pure computations over the event log (``segue.monitoring.events.EventLog``: three pandas frames,
``lists``, ``items`` and ``feedback``, in the layout the README shows). The job that reads the
log, loads each model version's catalogue and reference profile, writes ``report.json`` and
``report.html`` and logs them to MLflow is ``segue.jobs.monitor``; the server's
``GET /v1/monitoring/summary`` calls :func:`summarise`.

Per task and model version the report holds five sections:

- ``service``: lists served, fallback rate (overall and by reason), unmatched-input rate
  (inputs that matched no catalogue item / inputs sent), latency p50 and p99.
- ``outcomes``: feedback attributed to a list (same ``recommendation_id``, received within
  ``monitoring.attribution_window_seconds`` of serving). CTR@K = share of impressions at
  positions <= K whose item was then clicked; play rate@K the same with plays; both by position;
  acceptance rate = share of impressed lists with at least one click, play or accept; MRR of the
  first click = mean over impressed lists of 1 / position of the earliest click (0 without one).
- ``guardrails``: banned items served, items the request excluded (its own matched inputs and
  its ``exclude`` list, ``excluded_items``) that were served, duplicate items in one list: each
  must be 0; share of lists shorter than their k (at most ``monitoring.max_short_list_share``);
  artist concentration per list (its most frequent artist's share) and lists over
  ``serving.max_per_artist`` when a cap is set.
- ``output_health`` over the top K (``evaluation.k``): catalogue coverage, exposure Gini, mean
  popularity percentile, novelty, personalization, intra-list artist diversity, all defined
  once in ``segue.evaluation.metrics``.
- ``drift`` against the version's reference profile (``segue.monitoring.drift``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from segue.data.song_aliases import artist_key
from segue.evaluation.metrics import (
    artist_concentration,
    catalogue_coverage,
    exposure_counts,
    gini,
    intra_list_diversity,
    lorenz_curve,
    mean_popularity_percentile,
    mrr_at_k,
    novelty,
    personalization,
    popularity_percentiles,
)
from segue.monitoring.drift import DriftThresholds, input_drift, popularity_shares
from segue.ranking.ban_list import BanList
from segue.settings import Settings

REPORT_FORMAT = 1
CHECK_FILE = "check.json"
POSITIVE_FEEDBACK = ("click", "play", "accept")
GUARDRAIL_CHECKS = (
    "banned_items_served",
    "excluded_items_served",
    "duplicate_items",
    "short_lists",
    "artist_cap_exceeded",
)


class EventFrames(Protocol):
    """What the report reads of an event log (``segue.monitoring.events.EventLog``)."""

    lists: pd.DataFrame
    items: pd.DataFrame
    feedback: pd.DataFrame


@dataclass(frozen=True)
class ReportOptions:
    """The settings a report is computed with."""

    k: int = 10
    attribution_window: timedelta = timedelta(minutes=30)
    max_short_list_share: float = 0.0
    max_per_artist: int = 0
    drift: DriftThresholds = field(default_factory=DriftThresholds)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReportOptions:
        monitoring = settings.monitoring
        return cls(
            k=settings.evaluation.k,
            attribution_window=timedelta(seconds=monitoring.attribution_window_seconds),
            max_short_list_share=monitoring.max_short_list_share,
            max_per_artist=settings.serving.max_per_artist,
            drift=DriftThresholds.from_settings(monitoring),
        )


@dataclass(frozen=True)
class CatalogueView:
    """A model version's catalogue as the report needs it: keys, artists, popularity."""

    keys: np.ndarray  # str, in item order
    artists: np.ndarray  # str, "" when unknown
    counts: np.ndarray  # training interactions per item

    @classmethod
    def from_items(cls, items: pd.DataFrame) -> CatalogueView:
        frame = items.sort_values("item", kind="stable")
        return cls(
            frame["key"].astype(str).to_numpy(object),
            frame["artist"].fillna("").astype(str).to_numpy(object),
            frame["count"].to_numpy(np.int64),
        )

    @property
    def n_items(self) -> int:
        return len(self.keys)

    def index_of(self) -> dict[str, int]:
        return {key: index for index, key in enumerate(self.keys)}

    def percentile_of(self) -> dict[str, float]:
        return dict(zip(self.keys, popularity_percentiles(self.counts), strict=True))


@dataclass(frozen=True)
class VersionContext:
    """What the report knows of one served model version beyond the log."""

    catalogue: CatalogueView | None = None
    reference: Mapping[str, Any] | None = None
    banned_keys: frozenset[str] = frozenset()


def banned_item_keys(
    ban_list: BanList, keys: np.ndarray, artist_ids: np.ndarray, identify_artist=artist_key
) -> frozenset[str]:
    """The catalogue keys a ban list bans (by key, or by artist identity), plus its bare keys."""
    mask = ban_list.banned_mask(np.asarray(keys, dtype=object), artist_ids, identify_artist)
    return frozenset(np.asarray(keys, dtype=object)[mask].astype(str)) | ban_list.keys


# -- the window -------------------------------------------------------------------------------


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def _between(
    frame: pd.DataFrame, column: str, since: datetime | None, until: datetime | None
) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if since is not None:
        mask &= frame[column] >= _utc(since)
    if until is not None:
        mask &= frame[column] < _utc(until)
    return frame[mask]


def attribute_feedback(
    lists: pd.DataFrame, items: pd.DataFrame, feedback: pd.DataFrame, window: timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Feedback joined to its list: (attributed rows with task, model_version and position,
    unattributed rows). A row is attributed when its ``recommendation_id`` is a served list and
    it was received no earlier than the list was served and within ``window`` after."""
    served = lists[["recommendation_id", "served_at", "task", "model_version", "k"]]
    joined = feedback.merge(served, on="recommendation_id", how="left")
    delay = joined["received_at"] - joined["served_at"]
    inside = joined["served_at"].notna() & (delay >= pd.Timedelta(0)) & (delay <= window)
    attributed = joined[inside].copy()
    unattributed = feedback[~inside.to_numpy()]
    positions = items[["recommendation_id", "item", "position"]].drop_duplicates(
        ["recommendation_id", "item"]
    )
    attributed = attributed.merge(
        positions, on=["recommendation_id", "item"], how="left", suffixes=("", "_served")
    )
    attributed["position"] = attributed["position"].fillna(attributed["position_served"])
    return attributed.drop(columns="position_served"), unattributed


# -- the sections -----------------------------------------------------------------------------


def _quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def service_section(lists: pd.DataFrame) -> dict[str, Any]:
    n = len(lists)
    fallback = lists["fallback"].dropna()
    inputs = int(lists["input_size"].sum())
    latency = lists["latency_ms"].dropna().to_numpy(np.float64)
    return {
        "lists_served": n,
        "fallback_rate": len(fallback) / n if n else None,
        "fallback_by_reason": {
            str(reason): count / n for reason, count in fallback.value_counts().items()
        },
        "unmatched_input_rate": int(lists["unmatched"].sum()) / inputs if inputs else None,
        "latency_p50_ms": _quantile(latency, 50),
        "latency_p99_ms": _quantile(latency, 99),
        # Failed requests serve no list: their count is in /metrics (segue_http_requests_total
        # with a 5xx status), not in the event log.
        "errors": None,
    }


def outcomes_section(attributed: pd.DataFrame, k: int) -> dict[str, Any]:
    """Online outcomes of one group's attributed feedback (see the module docstring)."""
    events = attributed.dropna(subset=["position"]).copy()
    events["position"] = events["position"].astype(int)
    events = events[(events["position"] >= 1) & (events["position"] <= k)]
    shown = events[events["type"] == "impression"].drop_duplicates(["recommendation_id", "item"])

    def reacted(kind: tuple[str, ...]) -> pd.Series:
        pairs = events[events["type"].isin(kind)][["recommendation_id", "item"]].drop_duplicates()
        keyed = shown.merge(pairs.assign(hit=True), on=["recommendation_id", "item"], how="left")
        return keyed["hit"].fillna(False).astype(bool).to_numpy()

    clicked, played = reacted(("click",)), reacted(("play",))
    by_position = []
    for position in range(1, k + 1):
        at = (shown["position"] == position).to_numpy()
        n = int(at.sum())
        by_position.append(
            {
                "position": position,
                "impressions": n,
                "clicks": int(clicked[at].sum()),
                "click_through_rate": float(clicked[at].mean()) if n else None,
                "play_rate": float(played[at].mean()) if n else None,
            }
        )
    impressed = shown["recommendation_id"].unique()
    positive = events[events["type"].isin(POSITIVE_FEEDBACK)]
    accepted = positive["recommendation_id"].unique()
    clicks = events[events["type"] == "click"].sort_values(["received_at", "timestamp"])
    first_click = clicks.drop_duplicates("recommendation_id").set_index("recommendation_id")
    slots = np.arange(k)  # slot s holds position s + 1: MRR@K of the first click's slot
    reciprocal_ranks = [
        mrr_at_k(slots, np.array([first_click.at[rid, "position"] - 1]), k)
        if rid in first_click.index
        else 0.0
        for rid in impressed
    ]
    n_shown = len(shown)
    return {
        "impressions": n_shown,
        "clicks": int(clicked.sum()),
        "plays": int(played.sum()),
        "click_through_rate": float(clicked.mean()) if n_shown else None,
        "play_rate": float(played.mean()) if n_shown else None,
        "impressed_lists": len(impressed),
        "acceptance_rate": float(np.isin(impressed, accepted).mean()) if len(impressed) else None,
        "mrr_first_click": float(np.mean(reciprocal_ranks)) if len(impressed) else None,
        "by_position": by_position,
    }


def _lists_of_items(items: pd.DataFrame) -> pd.core.groupby.DataFrameGroupBy:
    return items.sort_values(["recommendation_id", "position"], kind="stable").groupby(
        "recommendation_id", sort=False
    )


def guardrails_section(
    lists: pd.DataFrame, items: pd.DataFrame, banned_keys: frozenset[str], options: ReportOptions
) -> dict[str, Any]:
    n = len(lists)
    banned = int(items["item"].isin(banned_keys).sum()) if banned_keys else 0
    # A request's own (matched) inputs are excluded from its list (seen songs, a user's history),
    # and so is its explicit ``exclude`` list (``excluded_items``; absent in older logs).
    given = pd.concat(
        [
            lists[["recommendation_id", column]]
            .explode(column)
            .dropna()
            .rename(columns={column: "item"})
            for column in ("input_items", "excluded_items")
            if column in lists.columns
        ]
        or [pd.DataFrame(columns=["recommendation_id", "item"])],
        ignore_index=True,
    )
    excluded = items.merge(given.drop_duplicates(), on=["recommendation_id", "item"], how="inner")
    per_list = items.groupby("recommendation_id")["item"].agg(["size", "nunique"])
    duplicates = int((per_list["size"] - per_list["nunique"]).sum())
    short = int((lists["n_items"] < lists["k"]).sum())
    # Items without an artist (movies) have no artist to concentrate on.
    with_artist = items[items["artist"].fillna("") != ""]
    concentration = [
        artist_concentration(group["artist"].tolist()) for _, group in _lists_of_items(with_artist)
    ]
    section: dict[str, Any] = {
        "banned_items_served": banned,
        "excluded_items_served": len(excluded),
        "duplicate_items": duplicates,
        "short_lists": short / n if n else 0.0,
        "short_list_count": short,
        "artist_concentration_mean": float(np.mean(concentration)) if concentration else None,
        "artist_concentration_max": float(np.max(concentration)) if concentration else None,
    }
    if options.max_per_artist > 0:
        top_artist = (
            with_artist.groupby(["recommendation_id", "artist"]).size().groupby(level=0).max()
        )
        section["artist_cap_exceeded"] = int((top_artist > options.max_per_artist).sum())
    return section


def output_health_section(
    items: pd.DataFrame, catalogue: CatalogueView | None, k: int
) -> dict[str, Any]:
    top = items[items["position"] <= k].sort_values(["recommendation_id", "position"])
    keys = top["item"].astype(str).to_numpy(object)
    if catalogue is not None:
        index = catalogue.index_of()
        n_items = catalogue.n_items
    else:  # without the catalogue only the served items are known
        index = {key: i for i, key in enumerate(pd.unique(keys))}
        n_items = len(index)
    codes = np.array([index.get(key, -1) for key in keys], dtype=np.int64)
    ids = top["recommendation_id"].to_numpy()
    starts = np.flatnonzero(ids[1:] != ids[:-1]) + 1  # where each list begins, after the first
    ranked = np.split(codes, starts) if len(codes) else []
    artist_names = top["artist"].fillna("").astype(str).to_numpy(object)
    artists = np.split(artist_names, starts) if len(codes) else []
    diversity = [intra_list_diversity(list(a)) for a in artists if len(a) >= 2 and all(a)]
    exposure = exposure_counts(ranked, n_items, k)
    section: dict[str, Any] = {
        "k": k,
        "lists": len(ranked),
        "distinct_items": len(np.unique(keys)),
        "catalogue_items": n_items if catalogue is not None else None,
        "catalogue_coverage": catalogue_coverage(ranked, n_items, k)
        if catalogue is not None
        else None,
        "exposure_gini": gini(exposure),
        "personalization": personalization(ranked, k),
        "intra_list_artist_diversity": float(np.mean(diversity)) if diversity else None,
        "mean_popularity_percentile": None,
        "novelty_bits": None,
        "unknown_items_served": int((codes < 0).sum()),
    }
    if catalogue is not None:
        section["mean_popularity_percentile"] = mean_popularity_percentile(
            ranked, popularity_percentiles(catalogue.counts), k
        )
        section["novelty_bits"] = novelty(ranked, catalogue.counts, k)
    lorenz_items, lorenz_exposure = lorenz_curve(exposure)
    section["lorenz"] = _thin_curve(lorenz_items, lorenz_exposure)
    return section


def _thin_curve(x: np.ndarray, y: np.ndarray, points: int = 101) -> dict[str, list[float]]:
    """A curve kept to at most ``points`` points, for the JSON and the plot."""
    if len(x) > points:
        chosen = np.unique(np.linspace(0, len(x) - 1, points).round().astype(int))
        x, y = x[chosen], y[chosen]
    return {"items": [round(float(v), 6) for v in x], "exposure": [round(float(v), 6) for v in y]}


# -- the report -------------------------------------------------------------------------------


def _alert(
    check: str,
    kind: str,
    value: float | None,
    threshold: float | None,
    alert: bool,
    message: str,
    **where: str,
) -> dict[str, Any]:
    return {
        "check": check,
        "kind": kind,
        "value": value,
        "threshold": threshold,
        "alert": alert,
        "message": message,
        **where,
    }


def guardrail_checks(guardrails: Mapping[str, Any], options: ReportOptions) -> list[dict[str, Any]]:
    """The guardrails of one group as checks: the first three and any cap must be 0."""
    checks = []
    for name in GUARDRAIL_CHECKS:
        if name not in guardrails:
            continue
        value = guardrails[name]
        threshold = options.max_short_list_share if name == "short_lists" else 0
        alert = value > threshold
        label = name.replace("_", " ")
        checks.append(
            _alert(
                name,
                "guardrail",
                float(value),
                float(threshold),
                alert,
                f"{label}: {value:.4g} (must be <= {threshold})",
            )
        )
    return checks


def build_report(
    log: EventFrames,
    *,
    since: datetime,
    until: datetime,
    options: ReportOptions,
    versions: Mapping[tuple[str, str], VersionContext] | None = None,
    task: str | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The report of the lists served in [since, until) (and their feedback), as JSON-able data.

    ``versions`` maps (task, model_version) to its catalogue, reference profile and banned keys;
    a version missing there is reported without catalogue-based figures and drift.
    """
    versions = versions or {}
    lists = _between(log.lists, "served_at", since, until)
    if task is not None:
        lists = lists[lists["task"] == task]
    items = log.items[log.items["recommendation_id"].isin(lists["recommendation_id"])]
    attributed, unattributed = attribute_feedback(
        log.lists, log.items, log.feedback, options.attribution_window
    )
    attributed = attributed[attributed["recommendation_id"].isin(lists["recommendation_id"])]
    unattributed = _between(unattributed, "received_at", since, until)
    feedback_in_window = _between(log.feedback, "received_at", since, until)
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window": {"since": _iso(since), "until": _iso(until)},
        "task": task,
        "k": options.k,
        "attribution_window_seconds": options.attribution_window.total_seconds(),
        "skipped_files": [{"path": path, "reason": reason} for path, reason in skipped or []],
        "totals": {
            "lists_served": len(lists),
            "feedback_events": len(feedback_in_window),
            "attributed_feedback": len(attributed),
            "unattributed_feedback": len(unattributed),
        },
        "empty": lists.empty and feedback_in_window.empty,
        "groups": [],
        "alerts": [],
        "checks": [],
        "series": _series(lists, feedback_in_window),
    }
    if report["empty"]:
        report["message"] = (
            f"no lists served and no feedback between {_iso(since)} and {_iso(until)}"
        )
        return report
    for (group_task, version), group in lists.groupby(["task", "model_version"], sort=True):
        context = versions.get((str(group_task), str(version)), VersionContext())
        group_items = items[items["recommendation_id"].isin(group["recommendation_id"])]
        group_feedback = attributed[
            attributed["recommendation_id"].isin(group["recommendation_id"])
        ]
        where = {"task": str(group_task), "model_version": str(version)}
        guardrails = guardrails_section(group, group_items, context.banned_keys, options)
        checks = [{**check, **where} for check in guardrail_checks(guardrails, options)]
        drift: dict[str, Any] = {}
        if context.reference is not None:
            percentile_of = context.catalogue.percentile_of() if context.catalogue else {}
            results = input_drift(context.reference, group, percentile_of, options.drift)
            drift = {name: result.to_dict() for name, result in results.items()}
            checks += [
                {
                    **_alert(
                        f"drift_{name}",
                        "drift",
                        result.effect,
                        result.threshold,
                        result.alert,
                        result.message,
                    ),
                    **where,
                }
                for name, result in results.items()
            ]
            drift["histograms"] = _drift_histograms(context.reference, group, percentile_of)
        else:
            drift = {"message": "no reference profile for this version: drift not tested"}
        report["groups"].append(
            {
                **where,
                "model_name": str(group["model_name"].iloc[0]),
                "algorithm": str(group["algorithm"].iloc[0]),
                "service": service_section(group),
                "outcomes": outcomes_section(group_feedback, options.k),
                "guardrails": guardrails,
                "output_health": output_health_section(group_items, context.catalogue, options.k),
                "drift": drift,
            }
        )
        report["checks"] += checks
    report["alerts"] = [check for check in report["checks"] if check["alert"]]
    return report


def _drift_histograms(
    reference: Mapping[str, Any], lists: pd.DataFrame, percentile_of: Mapping[str, float]
) -> dict[str, Any]:
    """Reference and current distributions behind the drift checks, for the report's plots."""
    inputs = [key for keys in lists["input_items"] if keys is not None for key in keys]
    known = np.array([percentile_of[k] for k in inputs if k in percentile_of], dtype=np.float64)
    return {
        "history_length": {
            "reference": list(reference["history_length"]["sample"]),
            "current": [int(v) for v in lists["input_size"]],
        },
        "input_popularity": {
            "reference": list(reference["input_popularity"]["shares"]),
            "current": [
                float(s)
                for s in popularity_shares(known, bins=int(reference["input_popularity"]["bins"]))
            ],
        },
    }


# The time buckets of the report's series: the first whose longest span holds the traffic.
_BUCKETS = (("15min", "10s", "10 seconds"), ("6h", "min", "minute"), ("3650D", "h", "hour"))


def _series(lists: pd.DataFrame, feedback: pd.DataFrame) -> dict[str, Any]:
    """Lists served and feedback per time bucket: 10 seconds, a minute or an hour, by how long
    the traffic lasted."""
    stamps = pd.concat([lists["served_at"], feedback["received_at"]])
    if stamps.empty:
        return {"bucket": None, "lists": {}, "feedback": {}}
    span = stamps.max() - stamps.min()
    bucket, name = next(
        (bucket, name) for longest, bucket, name in _BUCKETS if span <= pd.Timedelta(longest)
    )
    served = lists["served_at"].dt.floor(bucket).value_counts().sort_index()
    by_type = (
        feedback.assign(at=feedback["received_at"].dt.floor(bucket)).groupby(["type", "at"]).size()
    )
    return {
        "bucket": name,
        "lists": {_iso(at): int(n) for at, n in served.items()},
        "feedback": {
            str(kind): {_iso(at): int(n) for at, n in by_type[kind].items()}
            for kind in by_type.index.get_level_values(0).unique()
        },
    }


def _iso(value: Any) -> str:
    return _utc(value).isoformat()


# -- the server's summary ---------------------------------------------------------------------


def summarise(
    log: EventFrames,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    k: int = 10,
    attribution_window: timedelta = timedelta(minutes=30),
    check: Mapping[str, Any] | None = None,
    catalogue_sizes: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A small JSON summary of the window per task, for the page's Monitoring tab.

    ``check`` is the latest ``check.json`` (see :func:`read_check`); its alerts and drift
    checks are passed on. ``catalogue_sizes`` (task -> items) turns distinct items into
    coverage.
    """
    until = until or datetime.now(UTC)
    lists = _between(log.lists, "served_at", since, until)
    attributed, unattributed = attribute_feedback(
        log.lists, log.items, log.feedback, attribution_window
    )
    tasks: dict[str, Any] = {}
    for task, group in lists.groupby("task", sort=True):
        ids = group["recommendation_id"]
        items = log.items[log.items["recommendation_id"].isin(ids)]
        service = service_section(group)
        outcomes = outcomes_section(attributed[attributed["recommendation_id"].isin(ids)], k)
        guardrails = guardrails_section(group, items, frozenset(), ReportOptions(k=k))
        distinct = int(items["item"].nunique())
        size = (catalogue_sizes or {}).get(str(task))
        tasks[str(task)] = {
            "lists_served": service["lists_served"],
            "model_versions": sorted(str(v) for v in group["model_version"].unique()),
            "fallback_rate": service["fallback_rate"],
            "unmatched_rate": service["unmatched_input_rate"],
            "latency_p50_ms": service["latency_p50_ms"],
            "latency_p99_ms": service["latency_p99_ms"],
            "click_through_rate": outcomes["click_through_rate"],
            "clicks": outcomes["clicks"],
            "impressions": outcomes["impressions"],
            "distinct_items": distinct,
            "coverage": distinct / size if size else None,
            "guardrails": {
                name: guardrails[name]
                for name in ("excluded_items_served", "duplicate_items", "short_lists")
            },
        }
    checks = list((check or {}).get("checks", []))
    return {
        "window": {"since": _iso(since) if since else None, "until": _iso(until)},
        "tasks": tasks,
        "unattributed_feedback": len(_between(unattributed, "received_at", since, until)),
        "checked_at": (check or {}).get("checked_at"),
        "status": (check or {}).get("status"),
        "alerts": [c for c in checks if c.get("alert")],
        "drift": {c["check"]: c for c in checks if c.get("kind") == "drift"},
    }


def read_check(directory: str | Path | None) -> dict[str, Any] | None:
    """The latest ``check.json`` written by ``segue monitor check`` into the event-log
    directory; None when there is none or it cannot be read."""
    if directory is None:
        return None
    path = Path(directory) / CHECK_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# -- online decline ---------------------------------------------------------------------------


def click_counts(
    log: EventFrames,
    *,
    since: datetime,
    until: datetime,
    options: ReportOptions,
    task: str | None = None,
) -> dict[str, tuple[int, int]]:
    """Clicked impressions and impressions at positions <= K, per task, of the lists served in
    [since, until): the two counts the click-through decline test compares."""
    lists = _between(log.lists, "served_at", since, until)
    if task is not None:
        lists = lists[lists["task"] == task]
    attributed, _ = attribute_feedback(
        log.lists, log.items, log.feedback, options.attribution_window
    )
    counts = {}
    for name, group in lists.groupby("task", sort=True):
        mine = attributed[attributed["recommendation_id"].isin(group["recommendation_id"])]
        outcomes = outcomes_section(mine, options.k)
        counts[str(name)] = (outcomes["clicks"], outcomes["impressions"])
    return counts


def report_click_counts(report: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """The same counts from a saved ``report.json`` (summed over its model versions)."""
    counts: dict[str, tuple[int, int]] = {}
    for group in report.get("groups", []):
        clicks, impressions = counts.get(group["task"], (0, 0))
        outcomes = group["outcomes"]
        counts[group["task"]] = (clicks + outcomes["clicks"], impressions + outcomes["impressions"])
    return counts
