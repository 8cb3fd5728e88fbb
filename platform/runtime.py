"""Where Ray processes find this repo: one commented place for the `platform` name clash (STYLE.md section 8).

Ray worker processes start a fresh interpreter whose ``sys.path`` does not begin with the repo root, so they would
import the standard-library ``platform`` and then fail with "'platform' is not a package" on ``platform.trainables``.
The job-level runtime environment therefore puts the repo root first on PYTHONPATH (local and shared-filesystem
clusters), or ships the checkout as ``working_dir`` and puts that first (remote clusters).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
# Never shipped to a remote cluster: environments, outputs and VCS data.
SHIP_EXCLUDES = [".venv", ".git", "runs", "experiments", "mlruns", "docs/results", "**/__pycache__"]


def runtime_env(ship_code: bool = False, api_server: str | None = None) -> dict[str, Any]:
    """The job-level Ray runtime environment.

    Args:
        ship_code: upload the checkout as ``working_dir`` (for ``--address`` clusters whose nodes lack it).
        api_server: the private local cluster's dashboard URL, given to every worker as
            ``RAY_API_SERVER_ADDRESS``. Ray Train's placement-group cleaner queries the state API from a worker
            without an address; with a second Ray instance on the machine that lookup fails ("Found multiple active
            Ray instances"), the cleaner thread dies, the finished trial's placement group is never released and
            the next trial waits for CPUs for ever. Naming the cluster avoids the lookup.
    """
    existing = os.environ.get("PYTHONPATH", "")
    if ship_code:
        # Ray starts workers inside the unpacked working_dir; "." resolves there.
        env: dict[str, Any] = {"working_dir": str(REPO_ROOT), "excludes": SHIP_EXCLUDES, "env_vars": {"PYTHONPATH": "."}}
    else:
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), existing) if p)}}
    if api_server:
        env["env_vars"]["RAY_API_SERVER_ADDRESS"] = api_server
    return env


LOCALHOST = "127.0.0.1"


def ray_init_kwargs(address: str | None) -> dict[str, Any]:
    """``ray.init``'s arguments for a sweep: join ``address`` and ship the checkout to it, or (None) start a private
    local cluster ("local": never join one found on the machine) whose dashboard port is chosen here and named to
    every worker (``runtime_env``'s ``api_server``), so nothing in them looks for "the" cluster."""
    if address is not None:
        return {"address": address, "runtime_env": runtime_env(ship_code=True)}
    port = free_port(LOCALHOST)
    return {"address": "local", "runtime_env": runtime_env(api_server=f"http://{LOCALHOST}:{port}"),
            "dashboard_host": LOCALHOST, "dashboard_port": port}


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nothing listens on now (the OS's choice), for a private cluster's dashboard."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
