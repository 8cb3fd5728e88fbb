"""How a sweep starts or joins Ray: ``start_ray`` (private cluster or ``--address``) and the runtime environment.

Ray worker processes start a fresh interpreter whose ``sys.path`` does not begin with the repo root, so they would
import the standard-library ``platform`` and then fail with "'platform' is not a package" on ``platform.trainables``.
The job-level runtime environment therefore puts the repo root first on PYTHONPATH (local and shared-filesystem
clusters), or ships the checkout as ``working_dir`` and puts that first (remote clusters). This is the workers' half
of the `platform` name clash; the package's ``__init__`` is the other half: it loads the standard module and
re-exports every name, so pytest, uuid, torch, ray and mlflow still find what they import as ``platform``.

The private local cluster listens on 127.0.0.1 only, and what a trial can never get (more CPUs or GPUs than the
machine has, an address where no cluster answers) is refused before Ray starts.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from elm.config import ConfigError
from platform.ray_address import check_address

if TYPE_CHECKING:
    from platform.spec import ResourcesSpec

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
        env: dict[str, Any] = {
            "working_dir": str(REPO_ROOT),
            "excludes": SHIP_EXCLUDES,
            "env_vars": {"PYTHONPATH": "."},
        }
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
    return {
        "address": "local",
        "runtime_env": runtime_env(api_server=f"http://{LOCALHOST}:{port}"),
        "dashboard_host": LOCALHOST,
        "dashboard_port": port,
    }


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nothing listens on now (the OS's choice), for a private cluster's dashboard."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Ray binds every server of a node (GCS, raylet, object manager, core workers, dashboard and runtime-env agents,
# metrics) to the node's IP, and to loopback alone only when that IP is loopback. ray.init turns
# ``_node_ip_address="127.0.0.1"`` back into the machine's address; Ray's single-machine mode (this variable, its
# default on macOS and Windows) makes the node IP 127.0.0.1 in the driver and in every process it starts.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def start_ray(address: str | None, resources: ResourcesSpec) -> None:
    """Start the sweep's private local cluster (``address`` None), or join ``address``.

    The private cluster listens on 127.0.0.1 only, and a trial that needs more CPUs or GPUs than this machine has
    is refused before Ray starts. An address is probed first (``check_address``), so one that points nowhere fails
    in seconds instead of hanging in ray.init; a trial that no node of a joined cluster can hold is a warning
    (an autoscaler may still add such nodes).

    Raises:
        ConfigError: the trial cannot fit this machine, or no Ray cluster answers at ``address``.
    """
    if address is None:
        available = local_resources()
        check_trial_fits(resources, available)
        listen_on_loopback_only()
        import ray

        ray.init(
            **ray_init_kwargs(None),
            num_cpus=int(available["CPU"]),
            num_gpus=int(available["GPU"]),
            log_to_driver=True,
            ignore_reinit_error=True,
        )
        return
    check_address(address)
    import ray

    try:
        ray.init(**ray_init_kwargs(address), log_to_driver=True, ignore_reinit_error=True)
    except ConnectionError as e:
        raise ConfigError(f"could not join the Ray cluster at {address}: {e}") from None
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    warning = cluster_fit_warning(resources, nodes)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def listen_on_loopback_only() -> None:
    """Make the private local cluster this process starts bind every Ray socket to 127.0.0.1 (``LOOPBACK_ENV``).

    Not covered: torch's TCPStore, which a ray_train trial's rank 0 opens for DDP, listens on all interfaces (torch
    has no bind address for it).
    """
    os.environ.update(LOOPBACK_ENV)  # read by the processes ray.init starts, and by Ray when first imported
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # in case Ray was imported before the line above (read at call time)


def local_resources() -> dict[str, float]:
    """CPUs and GPUs of the private local cluster: the CPU count Ray itself would detect (cgroup limits included)
    and the GPUs torch sees; ``start_ray`` gives both to ray.init, so the fit check and Ray agree."""
    import torch
    from ray._private.utils import get_num_cpus

    return {"CPU": float(get_num_cpus()), "GPU": float(torch.cuda.device_count())}


def trial_needs(resources: ResourcesSpec) -> dict[str, float]:
    """CPUs and GPUs one trial holds at once: ``num_workers`` workers (the ray_train launcher's driving trial takes
    no CPU or GPU, ``platform.tune.make_trainable``)."""
    return {
        "CPU": resources.num_workers * resources.cpus_per_worker,
        "GPU": resources.num_workers * resources.gpus_per_worker,
    }


def check_trial_fits(resources: ResourcesSpec, available: Mapping[str, float]) -> None:
    """Refuse a trial the private local cluster (one node with ``available`` CPUs and GPUs) could never start.

    Raises:
        ConfigError: naming the resources keys, what one trial needs and what the machine has.
    """
    need = trial_needs(resources)
    if all(need[k] <= available.get(k, 0.0) for k in need):
        return
    raise ConfigError(
        f"{_trial_text(resources)} but this machine has {_cpus_gpus(available)}; lower them, or join "
        "a cluster with --address"
    )


def cluster_fit_warning(resources: ResourcesSpec, nodes: Sequence[Mapping[str, float]]) -> str | None:
    """Why no combination of ``nodes`` (each node's total resources) can hold one trial, or None if one can.

    A worker must fit on one node, and all workers together in the cluster (Ray Train spreads them over nodes).
    """
    worker = {"CPU": resources.cpus_per_worker, "GPU": resources.gpus_per_worker}
    need = trial_needs(resources)
    total = {k: sum(n.get(k, 0.0) for n in nodes) for k in need}
    if any(all(worker[k] <= n.get(k, 0.0) for k in worker) for n in nodes) and all(need[k] <= total[k] for k in need):
        return None
    largest = max(nodes, key=lambda n: (n.get("GPU", 0.0), n.get("CPU", 0.0)), default={})
    return (
        f"{_trial_text(resources)} but the cluster's {len(nodes)} node(s) hold {_cpus_gpus(total)}, the "
        f"largest {_cpus_gpus(largest)}; its trials stay PENDING until an autoscaler adds nodes that fit"
    )


def _trial_text(resources: ResourcesSpec) -> str:
    return (
        f"resources: a trial needs {_cpus_gpus(trial_needs(resources))} (num_workers={resources.num_workers} x "
        f"cpus_per_worker={resources.cpus_per_worker:g}, gpus_per_worker={resources.gpus_per_worker:g})"
    )


def _cpus_gpus(amounts: Mapping[str, float]) -> str:
    cpus, gpus = amounts.get("CPU", 0.0), amounts.get("GPU", 0.0)
    return f"{cpus:g} CPU{'' if cpus == 1 else 's'} and {gpus:g} GPU{'' if gpus == 1 else 's'}"
