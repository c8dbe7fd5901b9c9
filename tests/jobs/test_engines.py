"""Training engines: refused names, and Ray Train fitting what one process fits (local cluster)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from segue.data.dataset import Dataset
from segue.jobs.engines import EngineError, fit_here, scorer_fit
from segue.jobs.train import run_training
from segue.models.sequence_training import window_examples
from segue.settings import DistributedSettings, load_settings
from segue.tracking.runs import open_tracking

PER_WORKER_BATCH = 8
TINY_LSTM = {
    "embedding_dim": 4,
    "hidden_size": 8,
    "num_layers": 1,
    "dense_size": 8,
    "epochs": 2,
    "learning_rate": 0.01,
}
# 2 workers x batch 8 against one process x batch 16, after 2 epochs: float32 summation order.
SAME_GLOBAL_BATCH_TOLERANCE = 1e-5


def test_an_unknown_engine_or_misplaced_workers_are_refused() -> None:
    with pytest.raises(EngineError, match="unknown engine 'spark'"):
        scorer_fit(DistributedSettings(), "spark")
    with pytest.raises(EngineError, match="--workers is for --engine ray"):
        scorer_fit(DistributedSettings(), "local", workers=2)
    assert scorer_fit(DistributedSettings(), "local") is fit_here


@pytest.fixture
def ray_cluster() -> Iterator[None]:
    """A fresh local Ray cluster of 2 logical CPUs (never one already running on the machine)."""
    ray = pytest.importorskip(
        "ray", reason="Ray is not installed: pip install 'segue[ray]' to run the Ray engine tests"
    )
    pytest.importorskip("ray.train.torch", reason="Ray Train is missing: install segue[ray]")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ray_train_fits_what_one_process_fits_with_the_same_global_batch(
    ray_cluster: None,
    tmp_path: Path,
    make_playlists: Callable[..., Dataset],
    tracking_overrides: list[str],
) -> None:
    dataset = make_playlists(tmp_path / "playlists")
    # Two workers of half a CPU each: Ray's coordinator needs none, so 2 CPUs always suffice.
    settings = load_settings(
        overrides=[
            *tracking_overrides,
            "tracking.experiment=ray-train",
            "distributed.cpus_per_worker=0.5",
            "evaluation.cutoffs=[5, 10]",
        ]
    )
    params = {**TINY_LSTM, "batch_size": PER_WORKER_BATCH}
    on_ray = run_training(
        settings, "next-song", "lstm", dataset.directory, params=params, engine="ray", workers=2
    )
    alone = run_training(
        settings,
        "next-song",
        "lstm",
        dataset.directory,
        params={**params, "batch_size": 2 * PER_WORKER_BATCH},
        track=False,
        progress=False,
    )
    rows = len(window_examples(alone.split.train.sequences, 2, alone.split.train.n_items)[1])
    assert rows % (2 * PER_WORKER_BATCH) == 0, "no padded step: the comparison is exact"

    state_ray, state_alone = on_ray.model._state(), alone.model._state()
    largest = max(np.abs(state_ray[k] - state_alone[k]).max() for k in state_alone)
    assert largest < SAME_GLOBAL_BATCH_TOLERANCE
    assert on_ray.test_metrics["last_ndcg_at_10"] == pytest.approx(
        alone.test_metrics["last_ndcg_at_10"], abs=1e-6
    )

    store = open_tracking(settings)
    experiment = store.client.get_experiment_by_name("ray-train")
    (run,) = store.client.search_runs([experiment.experiment_id])
    assert run.info.run_id == on_ray.run_id
    assert [m.step for m in store.client.get_metric_history(run.info.run_id, "loss")] == [1, 2]
