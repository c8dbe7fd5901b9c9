"""`segue train --nproc 2`: the training job on two torchrun ranks records one run, saves once."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from segue.data.dataset import Dataset
from segue.models.base import load_model
from segue.settings import load_settings
from segue.tracking.runs import open_tracking

pytest.importorskip("torch")

TINY_SASREC = [
    "models.sasrec.embedding_dim=8",
    "models.sasrec.num_blocks=1",
    "models.sasrec.max_length=6",
    "models.sasrec.epochs=2",
    "models.sasrec.batch_size=8",
    "evaluation.cutoffs=[5, 10]",
]


@pytest.mark.slow
def test_two_ranks_record_exactly_one_run_and_save_the_model_once(
    tmp_path: Path, make_playlists: Callable[..., Dataset], tracking_overrides: list[str]
) -> None:
    dataset = make_playlists(tmp_path / "playlists")
    experiment_name = f"two-ranks-{uuid.uuid4().hex[:8]}"  # the store is shared by the session
    store_overrides = [*tracking_overrides, f"tracking.experiment={experiment_name}"]
    sets = [arg for key in [*store_overrides, *TINY_SASREC] for arg in ("--set", key)]
    command = [
        sys.executable,
        "-m",
        "segue",
        *sets,
        "train",
        "--task",
        "next-song",
        "--model",
        "sasrec",
        "--data",
        str(dataset.directory),
        "--save-model",
        str(tmp_path / "model"),
        "--nproc",
        "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path, check=False
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    assert finished.stdout.count("run id: ") == 1, "rank 0 alone reports"

    store = open_tracking(load_settings(overrides=store_overrides))
    experiment = store.client.get_experiment_by_name(experiment_name)
    (run,) = store.client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert f"run id: {run.info.run_id}" in finished.stdout
    assert run.data.params["model"] == "sasrec"
    assert "last_ndcg_at_10" in run.data.metrics
    loss = store.client.get_metric_history(run.info.run_id, "loss")
    assert [metric.step for metric in loss] == [1, 2]

    saved = load_model(tmp_path / "model")
    assert len(saved.training_history) == 2
    assert saved.training_history[-1]["loss"] == pytest.approx(loss[-1].value)
