"""The retraining pipeline end to end on raw playlists: ingest -> train -> register -> promote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segue.cli.main import app
from segue.jobs.pipeline import STEPS, run_pipeline
from segue.settings import Settings
from segue.tracking.promotion import TAG_DECISION
from segue.tracking.registry import CHAMPION, Registry

NAME = "dev.segue-next-song"


def write_playlists(path: Path, n_songs: int = 12, n_playlists: int = 48) -> Path:
    """Playlists walking a cycle of songs: the next song is always the following one."""
    songs = [f"{i:02d}:00 Artist {i % 4} - Song {i} [Official MV]" for i in range(n_songs)]
    records = [
        {
            "video_id": f"v{playlist}",
            "title": f"mix {playlist}",
            "songs": [songs[(playlist + step) % n_songs] for step in range(8)],
        }
        for playlist in range(n_playlists)
    ]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def champion(registry: Registry) -> str | None:
    found = registry.version_by_alias(NAME, CHAMPION)
    return found.version if found else None


def test_the_pipeline_promotes_a_better_model_and_keeps_it_over_a_worse_one(
    settings: Settings, registry: Registry
):
    raw = write_playlists(Path("playlists.json"))
    first = run_pipeline(settings, "next-song", raw, algorithm="markov", progress=False)
    assert first.ok, first.error
    assert [step.status for step in first.steps] == ["ok"] * len(STEPS)
    assert first.version == "1" and first.champion == "1" and first.promotion.moved
    assert first.dataset_dir == settings.data.root / "pipeline" / "next-song"

    second = run_pipeline(settings, "next-song", raw, algorithm="most-popular", progress=False)
    assert second.ok, second.error
    assert second.version == "2" and not second.promotion.moved
    assert second.champion == "1"
    refused = registry.get_version(NAME, "2")
    assert refused.tags[TAG_DECISION] == "rejected"
    # Same data, same settings: the same dataset and split, so the recorded figures compare.
    assert refused.dataset_fingerprint == registry.get_version(NAME, "1").dataset_fingerprint

    # An ingested dataset directory is used as it is.
    again = run_pipeline(
        settings, "next-song", first.dataset_dir, algorithm="markov", promote=False
    )
    assert again.ok and again.steps[0].detail.startswith(str(first.dataset_dir))
    assert again.steps[-1].status == "skipped" and champion(registry) == "1"


def test_a_failing_step_stops_the_job_and_leaves_the_champion(
    settings: Settings, registry: Registry
):
    raw = write_playlists(Path("playlists.json"))
    assert run_pipeline(settings, "next-song", raw, algorithm="markov", progress=False).ok

    missing = run_pipeline(settings, "next-song", Path("nowhere.json"), algorithm="markov")
    assert not missing.ok and missing.failed_step == "ingest"
    assert "nowhere.json" in missing.error
    assert [step.status for step in missing.steps[1:]] == ["skipped"] * (len(STEPS) - 1)

    # Playlists carry no timestamps: the temporal protocol cannot split them.
    unsplittable = run_pipeline(
        settings, "next-song", raw, algorithm="markov", protocol="temporal", progress=False
    )
    assert unsplittable.failed_step == "train+evaluate"
    assert unsplittable.version is None
    assert champion(registry) == "1" == unsplittable.champion


def test_pipeline_command_prints_one_summary_and_exits_non_zero_on_failure(
    settings: Settings, registry: Registry
):
    runner = CliRunner()
    raw = write_playlists(Path("playlists.json"))
    done = runner.invoke(
        app, ["pipeline", "run", "--task", "next-song", "--data", str(raw), "--model", "markov"]
    )
    assert done.exit_code == 0, done.output
    assert "pipeline next-song / markov" in done.output
    assert "champion: version 1" in done.output

    failed = runner.invoke(app, ["pipeline", "run", "--task", "next-song", "--data", "nowhere"])
    assert failed.exit_code == 1
    assert "pipeline stopped: ingest failed" in failed.output
    assert "the champion was not touched" in failed.output

    unknown = runner.invoke(
        app, ["pipeline", "run", "--task", "next-song", "--data", str(raw), "--model", "nope"]
    )
    assert unknown.exit_code == 2 and "unknown model 'nope'" in unknown.output
    assert champion(registry) == "1"


@pytest.mark.parametrize("task", ["radio"])
def test_an_unknown_task_is_refused_before_any_step(settings: Settings, task: str):
    result = CliRunner().invoke(app, ["pipeline", "run", "--task", task, "--data", "x"])
    assert result.exit_code == 2 and f"unknown task {task!r}" in result.output
