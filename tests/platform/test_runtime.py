"""What Ray can never give a sweep is refused before Ray starts (issue 10, section 2): an ``--address`` where no
cluster answers, and a trial larger than the machine. ``platform.runtime``'s checks, plus one slow run of the CLI.
"""

from __future__ import annotations

import socket
import time

import pytest

from elm.config import ConfigError
from platform.ray_address import check_address, wait_for_port
from platform.runtime import check_trial_fits, cluster_fit_warning, free_port, trial_needs
from platform.spec import ResourcesSpec
from tests.platform.procs import SMOKE, run_cli

FAST_PROBE_S = 0.3  # the CLI waits PROBE_TIMEOUT_S; a refused port gives the same answer sooner


def test_a_closed_port_fails_within_the_timeout_naming_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=f"no Ray cluster answers at {address} .*tried for 0.3 s"):
        check_address(address, timeout_s=FAST_PROBE_S)
    assert time.monotonic() - t0 < FAST_PROBE_S + 1.0


def test_a_closed_ray_client_port_fails_naming_the_address() -> None:
    address = f"ray://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match=f"no Ray cluster answers at {address} "):
        check_address(address, timeout_s=FAST_PROBE_S)


def test_a_listening_socket_passes_the_port_probe_and_a_closed_one_does_not() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert wait_for_port("127.0.0.1", port, FAST_PROBE_S)
    assert not wait_for_port("127.0.0.1", port, FAST_PROBE_S)


def test_a_port_that_is_not_a_ray_cluster_is_named_as_such() -> None:
    from ray.util import get_node_ip_address

    host = get_node_ip_address()  # Ray dials 127.0.0.1 as this address
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:  # accepts, never speaks gRPC
        server.bind((host, 0))
        server.listen()
        address = f"{host}:{server.getsockname()[1]}"
        with pytest.raises(
            ConfigError, match=f"--address {address}: something listens here but does not answer as a Ray GCS"
        ):
            check_address(address, timeout_s=FAST_PROBE_S, rpc_timeout_s=0.2)


@pytest.mark.parametrize("address", ["127.0.0.1", "ray://host:port"])
def test_a_malformed_address_names_the_forms_ray_accepts(address: str) -> None:
    with pytest.raises(ConfigError, match=f"--address {address}: .*expected HOST:PORT"):
        check_address(address, timeout_s=FAST_PROBE_S)


def test_an_unresolvable_host_fails_at_once() -> None:
    with pytest.raises(ConfigError, match="the host 'no-such-host.invalid' does not resolve"):
        check_address("no-such-host.invalid:6379", timeout_s=5.0)


def test_a_trial_counts_every_worker() -> None:
    r = ResourcesSpec(num_workers=3, cpus_per_worker=2, gpus_per_worker=0.5, launcher="ray_train")
    assert trial_needs(r) == {"CPU": 6.0, "GPU": 1.5}


@pytest.mark.parametrize(
    "resources",
    [
        ResourcesSpec(),
        ResourcesSpec(num_workers=2, cpus_per_worker=1),
        ResourcesSpec(cpus_per_worker=0.5, gpus_per_worker=0.25),
    ],
)
def test_a_trial_that_fits_the_machine_passes(resources: ResourcesSpec) -> None:
    check_trial_fits(resources, {"CPU": 2.0, "GPU": 1.0})


def test_a_trial_larger_than_the_machine_names_the_keys_and_the_numbers() -> None:
    r = ResourcesSpec(num_workers=1, cpus_per_worker=4, gpus_per_worker=1)
    with pytest.raises(ConfigError) as e:
        check_trial_fits(r, {"CPU": 2.0, "GPU": 0.0})
    assert str(e.value) == (
        "resources: a trial needs 4 CPUs and 1 GPU (num_workers=1 x cpus_per_worker=4, gpus_per_worker=1) but this "
        "machine has 2 CPUs and 0 GPUs; lower them, or join a cluster with --address"
    )


def test_workers_that_together_exceed_the_machine_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs 3 CPUs and 0 GPUs .*num_workers=3 x cpus_per_worker=1"):
        check_trial_fits(ResourcesSpec(num_workers=3, launcher="ray_train"), {"CPU": 2.0})


def test_a_cluster_that_holds_the_trial_gives_no_warning() -> None:
    r = ResourcesSpec(num_workers=2, cpus_per_worker=4, gpus_per_worker=1, launcher="ray_train")
    nodes = [{"CPU": 4.0, "GPU": 1.0}, {"CPU": 8.0, "GPU": 1.0}]  # one worker per node
    assert cluster_fit_warning(r, nodes) is None


@pytest.mark.parametrize(
    "nodes",
    [
        [{"CPU": 2.0, "GPU": 1.0}, {"CPU": 8.0}],  # 10 CPUs and a GPU in all, but no node has 4 CPUs and a GPU
        [{"CPU": 4.0, "GPU": 1.0}],  # one worker fits, two do not
        [],
    ],
)
def test_a_cluster_that_can_never_hold_the_trial_warns(nodes: list[dict[str, float]]) -> None:
    r = ResourcesSpec(num_workers=2, cpus_per_worker=4, gpus_per_worker=1, launcher="ray_train")
    warning = cluster_fit_warning(r, nodes)
    assert warning is not None and warning.startswith(
        "resources: a trial needs 8 CPUs and 2 GPUs (num_workers=2 x cpus_per_worker=4, gpus_per_worker=1) but the "
        f"cluster's {len(nodes)} node(s) hold "
    )
    assert warning.endswith("its trials stay PENDING until an autoscaler adds nodes that fit")


@pytest.mark.slow
def test_the_cli_fails_fast_on_an_address_where_no_cluster_answers(tmp_path) -> None:
    address = f"127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(tmp_path / "exp"),
        "--address",
        address,
        timeout=120,
    )
    wall_s = time.monotonic() - t0
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"error: no Ray cluster answers at {address}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert wall_s < 30, wall_s  # was: minutes in ray.init, deaf to SIGTERM
