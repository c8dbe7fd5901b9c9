"""`segue serve`: the API and web page under uvicorn, loading each task's champion."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from segue.cli.context import get_context
from segue.serving import HTTP_PROTOCOL


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default serving.host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="TCP port (default serving.port).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default serving.workers).")
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Log every request line (/metrics counts them either way).")
    ] = False,
) -> None:
    """Serve recommendations over HTTP: the /v1 API, /metrics, /docs and the page at /."""
    import uvicorn

    from segue.serving.app import SETTINGS_ENVIRONMENT_VARIABLE, create_app

    settings = get_context(ctx).settings()
    bind_host = host or settings.serving.host
    bind_port = port or settings.serving.port
    processes = workers or settings.serving.workers
    typer.echo(f"segue: serving the {settings.env} profile on http://{bind_host}:{bind_port}")
    if processes == 1:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # an operator's: start it empty
            from segue.monitoring.prometheus import prepare_multiprocess_directory

            prepare_multiprocess_directory(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        uvicorn.run(
            create_app(settings),
            host=bind_host,
            port=bind_port,
            log_level="info",
            access_log=access_log,
            http=HTTP_PROTOCOL,
        )
        return
    # Worker processes import the app by name; they rebuild it from these exact settings.
    os.environ[SETTINGS_ENVIRONMENT_VARIABLE] = settings.model_dump_json()
    config = uvicorn.Config(
        "segue.serving.app:create_app_from_environment",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=processes,
        log_level="info",
        access_log=access_log,
        http=HTTP_PROTOCOL,
    )
    with metrics_shared_by_workers() as directory:
        run_workers(config, directory)


@contextlib.contextmanager
def metrics_shared_by_workers() -> Iterator[Path]:
    """A Prometheus multiprocess directory for this start, set before any worker starts.

    An operator's ``PROMETHEUS_MULTIPROC_DIR`` is emptied and used (and kept); otherwise a fresh
    temporary directory is made and removed at exit. Either way no value of an earlier start
    adds to this one's.
    """
    from segue.monitoring.prometheus import (
        MULTIPROCESS_ENVIRONMENT_VARIABLE,
        prepare_multiprocess_directory,
    )

    given = os.environ.get(MULTIPROCESS_ENVIRONMENT_VARIABLE)
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="segue-prometheus-"))
    prepare_multiprocess_directory(directory)
    os.environ[MULTIPROCESS_ENVIRONMENT_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        if not given:
            shutil.rmtree(directory, ignore_errors=True)
            os.environ.pop(MULTIPROCESS_ENVIRONMENT_VARIABLE, None)


def run_workers(config: Any, metrics_directory: Path) -> None:
    """uvicorn's multi-process mode, with Nagle's algorithm off on the shared socket and dead
    workers' live gauges dropped from the shared metrics.

    The socket uvicorn binds for its workers is not recognised as TCP by asyncio, which then
    leaves Nagle on: a response written in two parts waits for the client's delayed ACK (about
    40 ms on Linux). Accepted connections inherit TCP_NODELAY from the listening socket.
    """
    import socket

    from uvicorn.supervisors import Multiprocess

    from segue.monitoring.prometheus import mark_worker_dead

    class WorkerSupervisor(Multiprocess):
        """Marks each worker that died or was replaced as dead in the metrics directory."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.known: set[int | None] = set()

        def keep_subprocess_alive(self) -> None:
            super().keep_subprocess_alive()
            alive = {process.pid for process in self.processes}
            for pid in self.known - alive - {None}:
                mark_worker_dead(pid, metrics_directory)
            self.known = alive

    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    WorkerSupervisor(config, sockets=[sock]).run()
