"""Killing a running sweep for the resume tests (slow): SIGKILL its process group once a condition holds, then the
Ray processes of the local cluster it had started (that cluster only, nothing else on the machine)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest


def kill_ray_session_of(driver_pid: int) -> None:
    """SIGKILL the Ray processes (GCS, raylet, workers) of the local cluster a killed driver had started.

    They live in /tmp/ray/session_<time>_<driver pid>; other clusters on the machine are left alone.
    """
    session = re.compile(rf"/tmp/ray/session_[0-9_\-]+_{driver_pid}\b")
    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit():
            continue
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if session.search(cmdline):
            try:
                os.kill(int(proc_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def sigkill_sweep_when(proc: subprocess.Popen, ready: Callable[[], bool], deadline_s: float, waited_for: str) -> None:
    """Poll ``ready`` every 0.5 s while the sweep ``proc`` (started in its own session) runs; then SIGKILL its process
    group, wait for it, and SIGKILL the Ray session it started.

    Fails if the sweep ends first, or if ``ready`` is still false after ``deadline_s`` ("no <waited_for> within the
    deadline"); the sweep's group is killed either way.
    """
    deadline = time.time() + deadline_s
    try:
        while time.time() < deadline:
            if ready():
                break
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.5)
        else:
            pytest.fail(f"no {waited_for} within the deadline")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    kill_ray_session_of(proc.pid)
