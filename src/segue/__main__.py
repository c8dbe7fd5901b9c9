"""``python -m segue`` runs the ``segue`` command; torchrun starts each rank this way
(``torchrun --standalone --nproc_per_node=N -m segue train ...``)."""

import os

from segue.cli.main import app


def main() -> None:
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        # Started by torchrun: record this rank's exception in the error file torchrun reads, so
        # its failure summary names the rank and shows the error, not only an exit code.
        from torch.distributed.elastic.multiprocessing.errors import record

        record(app)()
    else:
        app()


if __name__ == "__main__":
    main()
