"""The monitoring jobs on real files: an event log written in the Parquet layout, a real embedded
MLflow store and registry, a ban list file, fresh data on disk."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_support import write_playlists
from lifecycle_support import catalogue
from segue.data.dataset import write_dataset
from segue.data.interactions import Interactions
from segue.jobs.monitor import (
    ALERT,
    ERROR,
    HEALTHY,
    evaluate_champion,
    online_decline_checks,
    run_check,
    run_report,
)
from segue.jobs.train import package_from_training, run_training
from segue.monitoring.drift import reference_profile
from segue.monitoring.events import SCHEMAS, read_event_log
from segue.settings import Settings, load_settings
from segue.tracking.package import ModelPackage
from segue.tracking.registry import CHAMPION, Registry
from segue.tracking.stores import tracking_uri

NAME = "dev.segue-next-song"
SERVED_AT = datetime(2026, 11, 30, 10, tzinfo=UTC)
SINCE, UNTIL = SERVED_AT - timedelta(hours=1), SERVED_AT + timedelta(hours=1)
KEYS = catalogue(10)["key"].tolist()  # "artist 0 - song 0", ...; artists "Artist i % 3"


def write_part(directory: Path, table: str, rows: list[dict]) -> Path:
    """One Parquet part of the event log, in the layout the server writes."""
    frame = pd.DataFrame(rows)
    stamp = frame[SCHEMAS[table].names[1] if table != "feedback" else "received_at"].min()
    folder = directory / table / f"date={stamp:%Y-%m-%d}" / f"hour={stamp:%H}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-1-{len(list(folder.iterdir())):08d}.parquet"
    pq.write_table(pa.Table.from_pandas(frame, schema=SCHEMAS[table], preserve_index=False), path)
    return path


def write_traffic(
    directory: Path,
    *,
    lists: int = 40,
    start: datetime = SERVED_AT,
    version: str = "1",
    served: tuple[str, ...] = (KEYS[5], KEYS[6], KEYS[7]),
    inputs: tuple[str, ...] = (KEYS[0], KEYS[1]),
    clicks_per_ten: int = 3,
) -> None:
    """``lists`` next-song lists one second apart, each shown, with clicks on some."""
    list_rows, item_rows, feedback_rows = [], [], []
    for n in range(lists):
        rid = f"{start:%H%M}-{n}"
        at = pd.Timestamp(start) + pd.Timedelta(seconds=n)
        list_rows.append(
            {
                "recommendation_id": rid,
                "served_at": at,
                "task": "next-song",
                "route": "/v1/next-songs",
                "model_name": NAME,
                "model_version": version,
                "algorithm": "most-popular",
                "k": 3,
                "user_id": None,
                "input_size": len(inputs) - 1 + n % 3,
                "unmatched": 0,
                "fallback": None,
                "n_items": len(served),
                "removed_ban_list": 0,
                "removed_excluded": 0,
                "removed_seen": 0,
                "removed_artist_cap": 0,
                "latency_ms": 5.0 + n,
                "input_items": list(inputs),
                "known_user": None,
                "excluded_items": [],
            }
        )
        for position, key in enumerate(served, start=1):
            item_rows.append(
                {
                    "recommendation_id": rid,
                    "served_at": at,
                    "task": "next-song",
                    "model_version": version,
                    "user_id": None,
                    "item": key,
                    "artist": f"Artist {KEYS.index(key) % 3}",
                    "score": 1.0 / position,
                    "position": position,
                }
            )
            feedback_rows.append(
                {
                    "recommendation_id": rid,
                    "item": key,
                    "type": "impression",
                    "position": position,
                    "timestamp": at,
                    "received_at": at + pd.Timedelta(seconds=1),
                }
            )
        if n % 10 < clicks_per_ten:
            feedback_rows.append({**feedback_rows[-1], "type": "click"})
    write_part(directory, "lists", list_rows)
    write_part(directory, "items", item_rows)
    write_part(directory, "feedback", feedback_rows)


@pytest.fixture
def champion(registry: Registry, make_package) -> str:
    """A next-song champion whose package carries a reference profile shaped like the traffic."""
    package = make_package(0.5)
    sequences = Interactions([np.array([0, 1, 2, 3]) for _ in range(50)], 10, [])
    package.reference = reference_profile("next-song", sequences, package.items["count"].to_numpy())
    version = registry.publish(package)
    registry.set_alias(NAME, CHAMPION, version.version)
    return version.version


def events_dir(settings: Settings) -> Path:
    return Path(settings.monitoring.event_log_dir)


def test_report_writes_json_and_html_and_logs_a_tagged_run(
    settings: Settings, champion: str
) -> None:
    write_traffic(events_dir(settings))
    corrupt = events_dir(settings) / "lists" / "date=2026-11-30" / "hour=10" / "part-9-bad.parquet"
    corrupt.write_bytes(b"PAR1 not really parquet")

    outcome = run_report(settings, since=SINCE, until=UNTIL, out_dir=Path("report"))

    report = json.loads((Path("report") / "report.json").read_text())
    assert report["totals"]["lists_served"] == 40
    assert [s["path"] for s in report["skipped_files"]] == [str(corrupt)]
    group = report["groups"][0]
    assert (group["task"], group["model_version"]) == ("next-song", champion)
    assert group["outcomes"]["click_through_rate"] == pytest.approx(12 / 120)
    assert group["output_health"]["catalogue_coverage"] == pytest.approx(3 / 10)
    assert group["drift"]["history_length"]["statistic"] is not None  # 40 lists: tested
    page = (Path("report") / "report.html").read_text()
    assert page.count("<img") >= 4  # time series, click-through, Lorenz curve, drift
    from mlflow import MlflowClient

    # The absolute store: MLflow caches stores by URI, so a relative one may be another test's.
    client = MlflowClient(tracking_uri(settings))
    run = client.get_run(outcome.run_id)
    assert run.data.tags["segue.model_version.next-song"] == champion
    assert run.data.tags["segue.kind"] == "monitoring-report"
    assert run.data.metrics[f"next-song.v{champion}.lists_served"] == 40
    artifacts = {a.path for a in client.list_artifacts(outcome.run_id, "monitoring")}
    assert {"monitoring/report.json", "monitoring/report.html"} <= artifacts


def test_report_over_an_empty_window_says_so(settings: Settings) -> None:
    outcome = run_report(settings, since=SINCE, until=UNTIL, out_dir=Path("empty"))
    assert outcome.report["empty"] and outcome.run_id is None
    assert "no lists served" in (Path("empty") / "report.html").read_text()


def test_check_is_healthy_then_alerts_on_a_banned_item_and_writes_check_json(
    settings: Settings, champion: str
) -> None:
    write_traffic(events_dir(settings))
    healthy = run_check(settings, since=SINCE, until=UNTIL)
    assert healthy.status == HEALTHY and healthy.exit_code == 0, healthy.alerts
    written = json.loads((events_dir(settings) / "check.json").read_text())
    assert written["status"] == "healthy"
    names = {check["check"] for check in written["checks"]}
    assert {"banned_items_served", "duplicate_items", "drift_history_length"} <= names

    # one song by key, and every song of the artist of KEYS[7] (served 40 times each)
    Path("ban.txt").write_text(f"{KEYS[6]}\nartist:Artist 1\n", encoding="utf-8")
    banning = load_settings("dev", ["serving.ban_list_file=ban.txt"])
    alert = run_check(banning, since=SINCE, until=UNTIL)
    assert alert.status == ALERT and alert.exit_code == 1
    fired = [check for check in alert.to_json()["checks"] if check["alert"]]
    assert [check["check"] for check in fired] == ["banned_items_served"]
    assert fired[0]["value"] == 80.0 and fired[0]["threshold"] == 0.0


def test_check_that_cannot_run_exits_2(settings: Settings) -> None:
    off = load_settings("dev", ["monitoring.event_log_dir="])
    outcome = run_check(off, since=SINCE, until=UNTIL)
    assert outcome.status == ERROR and outcome.exit_code == 2
    assert "event log is off" in outcome.notes[-1]
    bad = run_check(settings, since=SINCE, until=UNTIL, data=Path("missing"))
    assert bad.exit_code == 2 and "--task" in bad.notes[-1]


def test_drifted_traffic_fires_the_drift_checks(settings: Settings, champion: str) -> None:
    write_traffic(events_dir(settings), inputs=(KEYS[0],) * 9)
    outcome = run_check(settings, since=SINCE, until=UNTIL)
    assert outcome.exit_code == 1
    assert "drift_history_length" in {check["check"] for check in outcome.alerts}


def test_online_click_through_decline_against_the_previous_window(settings: Settings) -> None:
    directory = events_dir(settings)
    before = SERVED_AT - timedelta(hours=1)
    write_traffic(directory, lists=100, start=before, clicks_per_ten=5)  # CTR 50 / 300
    write_traffic(directory, lists=100, start=SERVED_AT, clicks_per_ten=1)  # CTR 10 / 300
    log = read_event_log(directory)
    window = (SERVED_AT, SERVED_AT + timedelta(hours=1))
    (check,) = online_decline_checks(settings, log, *window)
    assert check["alert"] and check["value"] == pytest.approx((50 - 10) / 50)
    assert check["p_value"] < 0.05
    steady = {"groups": [{"task": "next-song", "outcomes": {"clicks": 10, "impressions": 300}}]}
    (same,) = online_decline_checks(settings, log, *window, baseline=steady)
    assert not same["alert"] and same["value"] == 0.0
    few = online_decline_checks(
        load_settings("dev", ["monitoring.decline_min_impressions=1000"]), log, *window
    )
    assert not few[0]["alert"] and "not tested" in few[0]["message"]


def _fresh_playlists(directory: Path, *, shuffled: bool) -> Path:
    """Playlists over the package's catalogue: walking the chain, or in random order."""
    rng = np.random.default_rng(0)
    rows = []
    for playlist in range(60):
        walk = [(playlist + step) % 10 for step in range(6)]
        if shuffled:
            walk = rng.permutation(10)[:6].tolist()
        rows += [(f"p{playlist}", item, position, None, None) for position, item in enumerate(walk)]
    frame = pd.DataFrame(rows, columns=["sequence", "item", "position", "timestamp", "rating"])
    frame["timestamp"] = frame["timestamp"].astype("Int64")
    frame["rating"] = frame["rating"].astype("float64")
    items = catalogue(10).assign(count=np.bincount(frame["item"], minlength=10))
    return write_dataset(directory, "playlists", items, frame, {}).directory


def test_offline_decline_compares_fresh_data_with_the_registered_metrics(
    settings: Settings, registry: Registry, make_package
) -> None:
    version = registry.publish(make_package(0.95))
    registry.set_alias(NAME, CHAMPION, version.version)
    fresh = _fresh_playlists(Path("fresh"), shuffled=True)
    result = evaluate_champion(settings, "next-song", fresh, registry=registry)
    assert result.version == version.version and result.protocol == "playlist-holdout"
    assert result.recorded["ndcg_at_10"] == 0.95
    drop = result.relative_drop()
    assert drop == pytest.approx((0.95 - result.fresh["ndcg_at_10"]) / 0.95)
    assert drop > settings.monitoring.metric_decline_tolerance and result.alert
    check = result.check()
    assert check["check"] == "offline_metric_decline" and check["alert"]
    assert "on fresh data" in check["message"]


def test_a_trained_package_carries_its_reference_profile() -> None:
    dataset = write_playlists(Path("playlists"), n_playlists=40)
    result = run_training(
        load_settings("dev"), "next-song", "markov", dataset.directory, track=False, progress=False
    )
    package = package_from_training(result)
    # 40 playlists of 6 songs: requests of 1 to 5 songs, equally often
    assert package.reference["task"] == "next-song"
    assert package.reference["history_length"]["mean"] == 3.0
    assert package.reference["n_interactions"] == 240
    loaded = ModelPackage.load(package.save(Path("package")))
    assert (Path("package") / "reference.json").exists()
    assert loaded.reference == package.reference
