"""Helpers of the lifecycle tests that start real server processes (imported by test modules)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(url: str, process: subprocess.Popen, tries: int = 240) -> None:
    """Poll ``url`` until it answers 200; fail with the process's output if it exits first.

    Each try waits on the process for up to half a second, so a server that dies is noticed at
    once and a healthy one is used as soon as it answers.
    """
    for _ in range(tries):
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
        output = process.stderr.read().decode(errors="replace") if process.stderr else ""
        pytest.fail(f"{process.args[:3]} exited with {process.returncode}: {output[-3000:]}")
    pytest.fail(f"{url} did not answer after {tries} tries")


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it forked."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
