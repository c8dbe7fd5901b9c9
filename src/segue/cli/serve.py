"""`segue serve`: the API and web page under uvicorn, loading each task's champion."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from segue.cli.context import get_context


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
        uvicorn.run(
            create_app(settings),
            host=bind_host,
            port=bind_port,
            log_level="info",
            access_log=access_log,
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
    )
    run_workers(config)


def run_workers(config) -> None:
    """uvicorn's multi-process mode, with Nagle's algorithm off on the shared socket.

    The socket uvicorn binds for its workers is not recognised as TCP by asyncio, which then
    leaves Nagle on: a response written in two parts waits for the client's delayed ACK (about
    40 ms on Linux). Accepted connections inherit TCP_NODELAY from the listening socket.
    """
    import socket

    from uvicorn.supervisors import Multiprocess

    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()
