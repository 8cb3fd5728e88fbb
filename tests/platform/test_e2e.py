"""End to end with real Ray, Optuna and MLflow (slow: run with `python -m pytest -m slow`).

Each test runs `python -m platform.tune` as a user would, in a subprocess from the repo root, with its outputs in
tmp_path, then reads the MLflow store it wrote.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def tune(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "platform.tune", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def runs_of(out: Path, experiment: str) -> tuple[MlflowClient, list]:
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {out}"
    return client, client.search_runs([exp.experiment_id])


def children(runs: list) -> list:
    return [r for r in runs if r.data.tags.get("elm.role") == "trial"]


def test_smoke_sweep_tracks_every_trial(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    proc = tune("ablations/smoke.yaml", "--smoke", "--out", str(out))
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
        for key in ("test/logit_margin/mean", "test/logit_margin/class_mean_std", "test/emb_proj/spread_mean",
                    "test/posthoc_tau1/balanced_acc", "train/loss"):
            assert key in run.data.metrics, key
        arts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "config.yaml" in arts and "margins" in arts and "plots" in arts
    assert (out / "trials.csv").is_file() and "Best trial" in (out / "summary.md").read_text()


LAUNCHERS = ["in_trial", "ray_train"]  # training inside the Tune trial, or in a Ray Train TorchTrainer


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "exp"
    proc = tune("ablations/smoke.yaml", "--smoke", "--out", str(out), "--set", "tune.searcher=grid",
                "--set", "tune.scheduler=fifo", "--set", "search={optim.lr: {grid: [0.05, 1.0e+30]}}",
                "--set", f"resources.launcher={launcher}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, runs = runs_of(out, "smoke")
    by_lr = {r.data.params["optim.lr"]: r for r in children(runs)}
    assert by_lr["0.05"].info.status == "FINISHED"
    failed = by_lr["1e+30"]
    assert failed.info.status == "FAILED" and "training loss is" in failed.data.tags["error"]
    assert "NonFiniteLossError" in (out / "summary.md").read_text()


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


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_resume_after_sigkill_keeps_finished_trials_and_makes_no_duplicates(tmp_path: Path, launcher: str) -> None:
    out = tmp_path / "exp"
    args = ["ablations/smoke.yaml", "--out", str(out), "--set", "tune.searcher=grid", "--set", "tune.scheduler=fifo",
            "--set", "tune.max_concurrent=1", "--set", "optim.epochs=25",
            "--set", "search={loss.tau: {grid: [0.0, 1.0, 2.0]}}", "--set", f"resources.launcher={launcher}"]
    proc = subprocess.Popen([sys.executable, "-m", "platform.tune", *args], cwd=REPO_ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 400
    try:
        while time.time() < deadline:  # kill once the second trial has a checkpoint
            # Checkpoints live in out/train/<trial>/ (Ray Train) or out/ray/smoke/<trial>/ (in the trial).
            trial_dirs = {c.parent for c in out.glob("*/**/checkpoint_*")}
            if len(trial_dirs) >= 2:
                break
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.5)
        else:
            pytest.fail("no second trial checkpoint within the deadline")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    kill_ray_session_of(proc.pid)
    _, before = runs_of(out, "smoke")
    finished_before = {r.data.tags["elm.trial_id"] for r in children(before) if r.info.status == "FINISHED"}
    assert len(finished_before) >= 1

    again = tune(*args, "--resume")
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


def test_two_node_cluster_on_loopback_runs_a_two_worker_trial(tmp_path: Path) -> None:
    """A head and a worker node (1 CPU each); one trial's two DDP workers must span both; code is shipped."""
    from ray.cluster_utils import Cluster

    # The head runs the dashboard: Ray Train's placement-group cleaner asks it whether a controller is alive.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": True})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        out = tmp_path / "exp"
        proc = tune("ablations/smoke.yaml", "--smoke", "--out", str(out), "--address", cluster.address,
                    "--set", "resources.num_workers=2",
                    "--set", "tune.num_samples=1")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "world_size=2" in proc.stdout + proc.stderr
        _, runs = runs_of(out, "smoke")
        assert [r.info.status for r in children(runs)] == ["FINISHED"]
    finally:
        cluster.shutdown()
