"""`segue serve` as a person runs it: a real process on a loopback port, stopped by its PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lifecycle_support import free_port

pytestmark = pytest.mark.slow

START_SECONDS = 60.0


def test_serve_starts_without_champions_alive_but_not_ready(local_store) -> None:
    port = free_port()
    segue = Path(sys.executable).with_name("segue")
    process = subprocess.Popen(
        [str(segue), "--set", "serving.reload_interval_seconds=0", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "segue serve did not answer /healthz"
            time.sleep(0.1)
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert "no champion" in ready.json()["detail"]
        assert httpx.get(f"{url}/").headers["content-type"].startswith("text/html")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = process.stdout.read().decode()
    assert f"on http://127.0.0.1:{port}" in output
