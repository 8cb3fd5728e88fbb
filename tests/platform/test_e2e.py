"""End to end with real Ray, Optuna and MLflow (slow: run with `python -m pytest -m slow`).

Each test runs `python -m platform.tune` as a user would, in a subprocess from the repo root, with its outputs in
tmp_path, then reads the MLflow store it wrote.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from mlflow.tracking import MlflowClient

from tests.platform.procs import REPO_ROOT, SMOKE, run_cli, sets, sigkill_sweep_when, start_cli
from tests.platform.servers import stop

pytestmark = pytest.mark.slow


def runs_of(out: Path, experiment: str) -> tuple[MlflowClient, list]:
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {out}"
    return client, client.search_runs([exp.experiment_id])


def children(runs: list) -> list:
    return [r for r in runs if r.data.tags.get("elm.role") == "trial"]


def test_smoke_sweep_tracks_every_trial(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    proc = run_cli("platform.tune", *SMOKE, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    client, runs = runs_of(out, "smoke")
    parents = [r for r in runs if r.data.tags.get("elm.role") == "parent"]
    kids = children(runs)
    assert len(parents) == 1 and len(kids) == 2
    for run in kids:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert {"loss.tau", "loss.margin", "loss.lam", "optim.lr", "seed"} <= set(run.data.params)
        assert len(client.get_metric_history(run.info.run_id, "test/balanced_acc")) == 2  # per epoch
        for key in (
            "test/logit_margin/mean",
            "test/logit_margin/class_mean_std",
            "test/emb_proj/spread_mean",
            "test/posthoc_tau1/balanced_acc",
            "train/loss",
        ):
            assert key in run.data.metrics, key
        arts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "config.yaml" in arts and "margins" in arts and "plots" in arts
    assert (out / "trials.csv").is_file() and "Best trial" in (out / "summary.md").read_text()


LAUNCHERS = ["in_trial", "ray_train"]  # training inside the Tune trial, or in a Ray Train TorchTrainer


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "exp"
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(out),
        *sets(
            "tune.searcher=grid",
            "tune.scheduler=fifo",
            "search={optim.lr: {grid: [0.05, 1.0e+30]}}",
            f"resources.launcher={launcher}",
        ),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = runs_of(out, "smoke")
    by_lr = {r.data.params["optim.lr"]: r for r in children(runs)}
    assert by_lr["0.05"].info.status == "FINISHED"
    failed = by_lr["1e+30"]
    assert failed.info.status == "FAILED" and "training loss is" in failed.data.tags["error"]
    assert "NonFiniteLossError" in (out / "summary.md").read_text()


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_resume_after_sigkill_keeps_finished_trials_and_makes_no_duplicates(tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "exp"
    args = [
        "ablations/smoke.yaml",
        "--out",
        str(out),
        *sets(
            "tune.searcher=grid",
            "tune.scheduler=fifo",
            "tune.max_concurrent=1",
            "optim.epochs=25",
            "search={loss.tau: {grid: [0.0, 1.0, 2.0]}}",
            f"resources.launcher={launcher}",
        ),
    ]
    proc = start_cli("platform.tune", *args)
    # Kill once the second trial has a checkpoint: in out/train/<trial>/ (Ray Train) or out/ray/smoke/<trial>/ (in
    # the trial).
    sigkill_sweep_when(
        proc, lambda: len({c.parent for c in out.glob("*/**/checkpoint_*")}) >= 2, 400, "second trial checkpoint"
    )
    _, before = runs_of(out, "smoke")
    finished_before = {r.data.tags["elm.trial_id"] for r in children(before) if r.info.status == "FINISHED"}
    assert len(finished_before) >= 1

    again = run_cli("platform.tune", *args, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    client, after = runs_of(out, "smoke")
    kids = children(after)
    assert len(kids) == 3 and len({r.data.tags["elm.trial_id"] for r in kids}) == 3  # no duplicate runs
    assert all(r.info.status == "FINISHED" for r in kids)
    for run in kids:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        assert sorted(steps) == list(range(1, 26))  # every epoch logged once, also those a restarted trial replays
    # Progress counts epochs, not reports: a trial restarted from a checkpoint newer than Tune's snapshot reports
    # fewer times than it has epochs.
    import pandas as pd

    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["status"]) == ["finished"] * 3 and list(trials["epochs"]) == [25] * 3


def test_ray_workers_import_this_platform_package() -> None:
    code = (
        "import ray, platform\n"
        "from platform.runtime import runtime_env\n"
        "ray.init(num_cpus=1, runtime_env=runtime_env())\n"
        "@ray.remote\n"
        "def where():\n"
        "    import platform, platform.trainables.worker\n"
        "    return platform.__file__, platform.system(), platform.trainables.worker.train_fn_per_worker.__module__\n"
        "print(ray.get(where.remote()))\n"
        "ray.shutdown()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(REPO_ROOT / "platform" / "__init__.py") in proc.stdout
    assert "platform.trainables.worker" in proc.stdout


@contextlib.contextmanager
def two_node_cluster(root: Path, head_cpus: int = 1) -> Iterator[str]:
    """A head (``head_cpus`` CPUs) and a worker node (1 CPU) on loopback until the block ends; yields the address.
    The worker node does not share ``<root>/driver`` with the driver.

    The worker node runs in its own mount namespace with an empty tmpfs over ``<root>/driver``: there it sees a
    different, empty folder at the same path, as a node of a real cluster sees its own disk. Everything else on the
    machine (``<root>/shared`` included) it sees as the driver does, as it would a shared mount. Both nodes get this
    process's environment.
    """
    from ray.cluster_utils import Cluster

    (root / "driver").mkdir(exist_ok=True)
    # The head runs the dashboard: Ray Train's placement-group cleaner asks it whether a controller is alive.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, "include_dashboard": True})
    script = (
        f'mount -t tmpfs tmpfs "{root / "driver"}" && exec "{Path(sys.executable).parent / "ray"}" start '
        f"--address={cluster.address} --node-ip-address=127.0.0.1 --num-cpus=1 --block"
    )
    with (root / "worker_node.log").open("w") as log:
        node = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.time() + 120
        while sum(n["Alive"] for n in cluster.global_state.node_table()) < 2:
            assert node.poll() is None, (root / "worker_node.log").read_text()[-3000:]
            assert time.time() < deadline, "the worker node did not join within 120 s"
            time.sleep(1)
        yield cluster.address
    finally:
        stop(node, term_grace_s=30)  # the node's own process group only
        cluster.shutdown()


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``two_node_cluster`` for this module's tests: the address and the root whose ``driver/`` is not shared."""
    root = tmp_path_factory.mktemp("two_nodes")
    with two_node_cluster(root) as address:
        yield address, root


def test_two_node_cluster_refuses_a_node_local_storage_and_names_the_node_without_the_data(
    two_nodes: tuple[str, Path],
) -> None:
    """Default storage (the driver's --out) and data under a folder the worker node does not share: refused before
    any trial starts, with the node, what it lacks and the option to pass."""
    address, root = two_nodes
    data = root / "driver" / "data"
    if not data.exists():
        data.symlink_to(REPO_ROOT.parent / "shared" / "data")  # CIFAR-10 for the driver; the worker node lacks it
    out = root / "driver" / "refused"
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(out),
        "--address",
        address,
        "--set",
        f"data={{name: cifar10_lt, root: {data}, imbalance_ratio: 100}}",
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(error) == 1, proc.stderr[-3000:]
    assert f"cannot read the sweep's storage {out}" in error[0] and "pass --storage" in error[0]
    assert f"of dataset 'cifar10_lt': ['{data}/']" in error[0]
    named = re.findall(r"node \S+ \(\S+, id ([0-9a-f]{8})\)", error[0])
    assert len(named) == 2 and len(set(named)) == 1  # the worker node, for both reasons; the head has both
    assert not (out / "ray").exists() and not (out / "train").exists()


def test_two_node_cluster_on_loopback_runs_a_two_worker_trial(two_nodes: tuple[str, Path]) -> None:
    """One trial's two DDP workers span both nodes; code is shipped; checkpoints travel through the shared storage
    (the worker node cannot see the driver's --out)."""
    address, root = two_nodes
    out, shared = root / "driver" / "exp", root / "shared"
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(out),
        "--address",
        address,
        "--storage",
        str(shared),
        *sets("resources.num_workers=2", "tune.num_samples=1"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world_size=2" in proc.stdout + proc.stderr
    _, runs = runs_of(out, "smoke")
    assert [r.info.status for r in children(runs)] == ["FINISHED"]
    assert list((shared / "exp" / "train").glob("smoke-trial=*/checkpoint_*")), "no Ray Train checkpoint in storage"
    assert (shared / "exp" / "ray" / "smoke").is_dir()
    assert not (out / "ray").exists() and not (out / "train").exists()
