"""Where the training job fits its model: here, or on Ray Train workers.

``local`` fits in this process. Started by torchrun (``segue train --nproc N``), this process is
one rank of several and the shared trainer makes the fit a distributed one by itself.

``ray`` hands the same fit to ``ray.train.torch.TorchTrainer``: every worker builds the model from
the same algorithm, params and seed and calls the same ``fit`` on the same data; Ray sets up the
torch process group, which the shared trainer finds (``segue.models.distributed``). Rank 0 saves
the fitted model in the package's array format and returns the files; the driver loads them, so
the job measures, records one MLflow run and writes the package exactly as for a local fit.
Ray is the optional extra ``segue[ray]``, imported only here and only when asked for.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from segue.data.interactions import Holdout, Interactions
from segue.models.base import Scorer, create_model, load_model
from segue.models.distributed import DistributedTrainingError, resolve_backend
from segue.settings import DistributedSettings

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")

ScorerFit = Callable[[Scorer, Interactions, Holdout | None], Scorer]


class EngineError(ValueError):
    """An engine that does not exist or cannot run here (e.g. Ray is not installed)."""


def fit_here(scorer: Scorer, train: Interactions, validation: Holdout | None) -> Scorer:
    """The local engine: fit in this process (one rank of several under torchrun)."""
    return scorer.fit(train, validation)


def scorer_fit(
    settings: DistributedSettings, engine: str = "local", workers: int | None = None
) -> ScorerFit:
    """The fit of the named engine; ``workers`` (Ray only) overrides ``distributed.workers``."""
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "local":
        if workers is not None:
            raise EngineError("--workers is for --engine ray; use --nproc N for local processes")
        return fit_here
    try:
        import ray
        import ray.train.torch  # noqa: F401
    except ImportError as error:
        raise EngineError(
            f"--engine ray needs the optional extra: pip install 'segue[ray]' ({error})"
        ) from error
    count = workers if workers is not None else settings.workers

    def fit(scorer: Scorer, train: Interactions, validation: Holdout | None) -> Scorer:
        return fit_on_ray_train(scorer, train, validation, settings, count)

    return fit


def fit_on_ray_train(
    scorer: Scorer,
    train: Interactions,
    validation: Holdout | None,
    settings: DistributedSettings,
    workers: int,
) -> Scorer:
    """Fit ``scorer``'s algorithm on ``workers`` Ray Train workers; the fitted model returns.

    Joins the Ray cluster of ``settings.ray_address`` unless this process is already connected
    to one. A failed worker ends the fit with a :class:`DistributedTrainingError` naming its
    rank; ``FailureConfig(max_failures=0)`` so a failure is reported, never retried silently.
    """
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchConfig, TorchTrainer

    if not ray.is_initialized():
        ray.init(
            address=settings.ray_address or None,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    backend = resolve_backend(settings.backend)
    job = {
        "algorithm": scorer.name,
        "params": scorer.config.model_dump(mode="json"),
        "seed": scorer.seed,
        "validation_k": scorer.validation_k,
        "memory_limit_gb": scorer.memory_limit_gb,
        "train": train,
        "validation": validation,
    }
    with tempfile.TemporaryDirectory(prefix="segue-ray-train-") as scratch:
        trainer = TorchTrainer(
            fit_on_worker,
            train_loop_config=job,
            torch_config=TorchConfig(
                backend="gloo" if backend.startswith("cpu:") else backend,
                timeout_s=settings.collective_timeout_seconds,
            ),
            scaling_config=ScalingConfig(
                num_workers=workers,
                use_gpu=False,
                resources_per_worker={"CPU": settings.cpus_per_worker},
            ),
            run_config=RunConfig(
                name=f"segue-{scorer.name}-{uuid.uuid4().hex[:8]}",
                storage_path=scratch,
                failure_config=FailureConfig(max_failures=0),
            ),
        )
        try:
            result = trainer.fit()
        except TrainingFailedError as error:
            raise DistributedTrainingError(_describe_failure(error)) from error
        files = result.return_value
        if not files:
            raise DistributedTrainingError("Ray Train rank 0 returned no fitted model")
        model_dir = Path(scratch) / "model"
        model_dir.mkdir()
        for name, content in files.items():
            (model_dir / name).write_bytes(content)
        fitted = load_model(model_dir)
    fitted.validation_k = scorer.validation_k
    return fitted


def fit_on_worker(job: dict[str, Any]) -> dict[str, bytes] | None:
    """One Ray Train worker: the same model, the same fit; rank 0 returns the saved files."""
    import ray.train

    scorer = create_model(
        job["algorithm"],
        job["params"],
        seed=job["seed"],
        validation_k=job["validation_k"],
        memory_limit_gb=job["memory_limit_gb"],
    )
    scorer.fit(job["train"], job["validation"])
    if ray.train.get_context().get_world_rank() != 0:
        return None
    with tempfile.TemporaryDirectory(prefix="segue-fitted-") as scratch:
        saved = scorer.save(scratch)
        return {path.name: path.read_bytes() for path in saved.iterdir() if path.is_file()}


def _describe_failure(error: Exception) -> str:
    failures = getattr(error, "worker_failures", None)
    if failures:
        described = "; ".join(
            f"rank {rank}: {_first_line(failure)}" for rank, failure in sorted(failures.items())
        )
        return f"Ray Train worker failed ({described})"
    return f"Ray Train failed: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
