"""Running the platform's command-line modules (``python -m platform.tune ...``) as a user would, from the repo
root, for the slow tests; and killing a running sweep for the resume tests: SIGKILL its process group once a
condition holds, then the Ray processes of the local cluster it had started (that cluster only, nothing else on the
machine)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Callable

import pytest

from tests.conftest import REPO_ROOT

CLI_TIMEOUT_S = 600.0
SMOKE = ("ablations/smoke.yaml", "--smoke")  # platform.tune's two-trial smoke sweep on synthetic data


def sets(*assignments: str) -> list[str]:
    """``--set`` before each of ``assignments``: ``sets("a=1", "b=2")`` is ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for assignment in assignments for arg in ("--set", assignment)]


def _env(env: dict[str, str] | None) -> dict[str, str] | None:
    """This process's environment with ``env`` on top; None (inherit it unchanged) when there is nothing to add."""
    return None if env is None else {**os.environ, **env}


def run_cli(
    module: str,
    *args: str,
    cwd: Path = REPO_ROOT,
    env: dict[str, str] | None = None,
    timeout: float = CLI_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``python -m <module> <args>`` in ``cwd`` to its end (at most ``timeout`` s), output captured as text.

    ``env`` is added to this process's environment.
    """
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(env),
    )


def start_cli(
    module: str,
    *args: str,
    cwd: Path = REPO_ROOT,
    env: dict[str, str] | None = None,
    stdout: int | IO = subprocess.DEVNULL,
    stderr: int | IO = subprocess.DEVNULL,
    own_session: bool = True,
) -> subprocess.Popen[str]:
    """Start ``python -m <module> <args>`` in ``cwd`` and return at once; output as text to ``stdout``/``stderr``
    (discarded unless given).

    ``env`` is added to this process's environment. By default it runs in its own session, so that
    ``sigkill_sweep_when`` can kill its process group; ``own_session=False`` keeps it in the test's.
    """
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=_env(env),
        stdout=stdout,
        stderr=stderr,
        text=True,
        start_new_session=own_session,
    )


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
