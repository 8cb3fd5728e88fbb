"""A sweep whose storage is an S3 bucket (moto's S3 server on 127.0.0.1, started and stopped here): killed with
SIGKILL, resumed from the bucket; nothing lost, nothing duplicated, the checkpoints in the bucket (slow)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from elm.metrics.stored_logits import STORED_LOGITS_FILE
from tests.platform.procs import SMOKE, run_cli, sets, sigkill_sweep_when, start_cli
from tests.platform.servers import moto_s3, s3_keys
from tests.platform.test_e2e import children, runs_of

pytestmark = pytest.mark.slow
BUCKET = "elm-sweeps"
EPOCHS = 8
KILL_DEADLINE_S = 240
TUNE_TIMEOUT_S = 300


def trials_with_checkpoints(keys: list[str]) -> set[str]:
    """Trial folders under train/ in the bucket that hold a complete checkpoint."""
    return {k.split("/train/", 1)[1].split("/", 1)[0] for k in keys if "/train/" in k and k.endswith("/state.pt")}


def test_sweep_on_s3_survives_sigkill_and_resumes_from_the_bucket(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    args = [
        "ablations/smoke.yaml",
        "--out",
        str(out),
        "--storage",
        f"s3://{BUCKET}/sweeps",
        *sets(
            "tune.searcher=grid",
            "tune.scheduler=fifo",
            "tune.max_concurrent=1",
            f"optim.epochs={EPOCHS}",
            "search={loss.tau: {grid: [0.0, 1.0, 2.0]}}",
            "resources.launcher=in_trial",
        ),
    ]
    with moto_s3(tmp_path, BUCKET) as env:
        proc = start_cli("platform.tune", *args, env=env)
        sigkill_sweep_when(
            proc,
            lambda: len(trials_with_checkpoints(s3_keys(env, BUCKET, "sweeps/exp/"))) >= 2,
            KILL_DEADLINE_S,
            "second trial checkpoint in the bucket",
        )

        again = run_cli("platform.tune", *args, "--resume", env=env, timeout=TUNE_TIMEOUT_S)
        assert again.returncode == 0, again.stderr[-3000:]
        keys = s3_keys(env, BUCKET, "sweeps/exp/")

    client, after = runs_of(out, "smoke")
    kids = children(after)
    assert len(kids) == 3 and len({r.data.tags["elm.trial_id"] for r in kids}) == 3  # no duplicate runs
    assert all(r.info.status == "FINISHED" for r in kids)
    for run in kids:  # every epoch logged once, including those a restarted trial replays
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
        assert sorted(steps) == list(range(1, EPOCHS + 1))
        # the last checkpoint's stored logits, read from the bucket by the tracker
        assert STORED_LOGITS_FILE in {a.path for a in client.list_artifacts(run.info.run_id)}
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["status"]) == ["finished"] * 3 and list(trials["epochs"]) == [EPOCHS] * 3
    # The checkpoints and Tune's state are in the bucket, and nowhere on the driver's disk.
    assert len(trials_with_checkpoints(keys)) == 3
    assert any(k.startswith("sweeps/exp/ray/smoke/") and "experiment_state" in k for k in keys)
    assert "sweeps/exp/config.yaml" in keys  # mirrored: a driver elsewhere can --resume
    assert not (out / "ray").exists() and not (out / "train").exists()
    assert not list(out.rglob("state.pt"))


def test_an_s3_endpoint_that_is_down_is_one_error_line_before_ray(tmp_path: Path) -> None:
    from tests.platform.servers import free_port

    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    t0 = time.perf_counter()
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(tmp_path / "exp"),
        "--storage",
        f"s3://{BUCKET}/sweeps",
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and time.perf_counter() - t0 < 60
    assert f"error: --storage s3://{BUCKET}/sweeps: cannot reach it" in proc.stderr
    assert "Started a local Ray instance" not in proc.stdout + proc.stderr  # refused before Ray started
    assert not (tmp_path / "exp").exists()


def test_ray_train_trials_keep_checkpoints_and_failure_records_in_the_bucket(tmp_path: Path) -> None:
    """The ray_train launcher on S3: Ray Train's checkpoints and a diverged trial's failure.txt land in the bucket."""
    out = tmp_path / "exp"
    args = [
        *SMOKE,
        "--out",
        str(out),
        "--storage",
        f"s3://{BUCKET}/sweeps",
        *sets(
            "tune.searcher=grid",
            "tune.scheduler=fifo",
            "search={optim.lr: {grid: [0.05, 1.0e+30]}}",
            "resources.launcher=ray_train",
        ),
    ]
    with moto_s3(tmp_path, BUCKET) as env:
        proc = run_cli("platform.tune", *args, env=env, timeout=TUNE_TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr[-3000:]
        keys = s3_keys(env, BUCKET, "sweeps/exp/train/")
    client, runs = runs_of(out, "smoke")
    by_lr = {r.data.params["optim.lr"]: r for r in children(runs)}
    assert STORED_LOGITS_FILE in {a.path for a in client.list_artifacts(by_lr["0.05"].info.run_id)}
    assert by_lr["0.05"].info.status == "FINISHED" and by_lr["1e+30"].info.status == "FAILED"
    assert "training loss is" in by_lr["1e+30"].data.tags["error"]
    failed_trial = by_lr["1e+30"].data.tags["elm.trial_id"]
    assert f"sweeps/exp/train/smoke-trial={failed_trial}/failure.txt" in keys
    ok_trial = by_lr["0.05"].data.tags["elm.trial_id"]
    assert any(k.startswith(f"sweeps/exp/train/smoke-trial={ok_trial}/checkpoint_") for k in keys)
    assert not (out / "train").exists()


def test_two_nodes_without_a_shared_disk_train_through_the_bucket(tmp_path: Path) -> None:
    """Every trial runs on the worker node, which cannot see the driver's --out (the head node has no CPU, so no
    trial can start there; which node runs a trial is thereby fixed, not left to timing): each trial's checkpoints
    reach the bucket from there, the driver reads them back for MLflow, and the start-up check has seen both nodes
    read the bucket."""
    from unittest import mock

    from tests.platform.test_e2e import two_node_cluster

    out = tmp_path / "driver" / "exp"
    with (
        moto_s3(tmp_path, BUCKET) as env,
        mock.patch.dict(os.environ, env),
        two_node_cluster(tmp_path, head_cpus=0) as address,
    ):
        proc = run_cli(
            "platform.tune",
            *SMOKE,
            "--out",
            str(out),
            "--address",
            address,
            "--storage",
            f"s3://{BUCKET}/sweeps",
            *sets(
                "tune.searcher=grid",
                "tune.scheduler=fifo",
                "search={loss.tau: {grid: [0.0, 2.0]}}",
                "resources.launcher=in_trial",
            ),
            env=env,
            timeout=TUNE_TIMEOUT_S,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        keys = s3_keys(env, BUCKET, "sweeps/exp/")
    client, runs = runs_of(out, "smoke")
    kids = children(runs)
    assert len(kids) == 2 and all(r.info.status == "FINISHED" for r in kids)
    assert all(STORED_LOGITS_FILE in {a.path for a in client.list_artifacts(r.info.run_id)} for r in kids)
    assert len(trials_with_checkpoints(keys)) == 2
    assert not (out / "ray").exists() and not (out / "train").exists()
    assert not [k for k in keys if k.endswith(".elm-storage-check")]  # the start-up check cleaned up
