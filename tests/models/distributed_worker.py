"""One rank of the distributed trainer tests, started by torchrun (not collected by pytest).

    python -m torch.distributed.run --standalone --nproc_per_node=2 distributed_worker.py MODE OUT

``fit``: every neural model fits the tiny data below; each rank writes, per model, the SHA-256 of
its parameters after every epoch, its history and its final checksum to ``OUT/<model>.rank<r>.json``,
and rank 0 saves the fitted models under ``OUT/<model>/``.
``crash``: the shared trainer on a tiny network whose loss raises on rank 1 in epoch 2 (the way
a bad batch, or a broken disk only one rank sees, would fail).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from segue.data.interactions import Holdout, Interactions
from segue.models import trainer
from segue.models.base import create_model

PER_RANK_BATCH = 4

# 12 sequences of 5 items: 48 next-item windows and 12 user rows, both multiples of the global
# batch (4 per rank x 2 ranks), so no step is padded and the one-process comparison is exact.
TRAIN = Interactions(
    [
        np.array([(start + 3 * step) % 10 for step in range(5)], dtype=np.int64)
        for start in range(12)
    ],
    10,
)
# Five cases: the ranks measure three and two, and the reduced mean must still be the mean of five.
VALIDATION = Holdout(
    [np.array(h, dtype=np.int64) for h in ([0, 3], [1, 4, 7], [2], [5, 8], [6, 9])],
    [np.array(t, dtype=np.int64) for t in ([6], [0], [5], [1], [2])],
)

MODELS: dict[str, dict[str, object]] = {
    "lstm": {"embedding_dim": 4, "hidden_size": 8, "num_layers": 1, "dense_size": 8},
    "autoencoder": {"hidden_size": 8},
    "sasrec": {"embedding_dim": 8, "num_blocks": 1, "max_length": 6, "dropout": 0.0},
    "gru4rec": {
        "embedding_dim": 8,
        "hidden_size": 8,
        "max_length": 6,
        "full_softmax_max_items": 5,
        "sampled_negatives": 4,
    },
    "mult-vae": {"hidden_size": 8, "latent_size": 4},
}
SCHEDULE = {"epochs": 3, "patience": 1, "learning_rate": 0.01}


def parameter_checksum(network: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def fit_every_model(out: Path, rank: int) -> None:
    checksums: list[str] = []
    measure = trainer.validation_callback

    def checksummed_validation(scorer, holdout, k=10, max_cases=2000):  # type: ignore[no-untyped-def]
        validate = measure(scorer, holdout, k, max_cases)

        def run() -> dict[str, float]:
            checksums.append(parameter_checksum(scorer.network))
            return validate()

        return run

    # Test-only: the trainer validates once per epoch, which is where the parameters are read.
    trainer.validation_callback = checksummed_validation
    for name, params in MODELS.items():
        checksums.clear()
        config = {**params, **SCHEDULE, "batch_size": PER_RANK_BATCH}
        model = create_model(name, config, seed=5).fit(TRAIN, VALIDATION)
        record = {
            "epochs": checksums.copy(),
            "final": parameter_checksum(model.network),  # type: ignore[attr-defined]
            "history": [
                {k: v for k, v in epoch.items() if k != "epoch_seconds"}
                for epoch in model.training_history
            ],
        }
        (out / f"{name}.rank{rank}.json").write_text(json.dumps(record), encoding="utf-8")
        if rank == 0:
            model.save(out / name)


def crash_on_rank_one(rank: int) -> None:
    network = torch.nn.Linear(3, 1)
    rows = torch.arange(24, dtype=torch.float32).reshape(8, 3) / 24

    def batches(rng: np.random.Generator):  # type: ignore[no-untyped-def]
        from segue.models.distributed import rank_batches

        for index in rank_batches(rng.permutation(8), 2):
            yield (rows[torch.from_numpy(index)],)

    def loss(model: torch.nn.Module, batch: tuple[torch.Tensor, ...], epoch: int) -> torch.Tensor:
        if rank == 1 and epoch == 2:
            raise RuntimeError("injected failure: rank 1 cannot read its batch")
        return model(batch[0]).pow(2).mean()

    schedule = trainer.TrainingSchedule(epochs=4, learning_rate=0.1, patience=4, seed=0)
    trainer.train_network(network, schedule, batches, loss, label="crash")


def main() -> None:
    mode, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    if mode == "fit":
        fit_every_model(out, rank)
    elif mode == "crash":
        crash_on_rank_one(rank)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
