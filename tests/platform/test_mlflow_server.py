"""A sweep tracked on a shared MLflow server (``tracking.uri: http://...``): a real ``mlflow server`` on 127.0.0.1
with its own backend store and proxied artifact serving, started and stopped here (slow)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from elm.metrics.stored_logits import STORED_LOGITS_FILE
from tests.platform.procs import SMOKE, run_cli
from tests.platform.servers import MLFLOW_QUIET, free_port, mlflow_server
from tests.platform.test_e2e import children

pytestmark = pytest.mark.slow


def test_a_sweep_tracks_parent_children_and_artifacts_through_an_mlflow_server(tmp_path: Path) -> None:
    artifacts, out = tmp_path / "server_artifacts", tmp_path / "exp"
    with mlflow_server(
        tmp_path, f"sqlite:///{tmp_path / 'server.db'}", "--serve-artifacts", "--artifacts-destination", str(artifacts)
    ) as url:
        proc = run_cli(
            "platform.tune",
            *SMOKE,
            "--out",
            str(out),
            "--set",
            f"tracking.uri={url}",
            env=MLFLOW_QUIET,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = MlflowClient(url)
        exp = client.get_experiment_by_name("smoke")
        assert exp is not None and exp.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
        runs = client.search_runs([exp.experiment_id])
        parents = [r for r in runs if r.data.tags.get("elm.role") == "parent"]
        kids = children(runs)
        assert len(parents) == 1 and len(kids) == 2 and parents[0].info.status == "FINISHED"
        assert "elm.best_trial" in parents[0].data.tags
        logits = [r for r in kids if STORED_LOGITS_FILE in {a.path for a in client.list_artifacts(r.info.run_id)}]
        assert logits, "no trial's stored logits reached the server"  # ASHA may stop one trial before they exist
        for run in kids:
            assert run.info.status == "FINISHED"
            assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
            assert len(client.get_metric_history(run.info.run_id, "test/balanced_acc")) == 2
            arts = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"config.yaml", "margins", "plots"} <= arts
            got = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path / run.info.run_id))
            assert yaml.safe_load(Path(got).read_text())["name"] == "smoke"
    # The files went through the server to its artifact destination; nothing to a local store on the driver.
    assert list(artifacts.rglob("config.yaml")) and list(artifacts.rglob("*.png"))
    assert list(artifacts.rglob(STORED_LOGITS_FILE))
    assert not (out / "mlflow.db").exists() and not (out / "mlartifacts").exists()


def test_a_tracking_server_that_is_down_stops_the_cli_before_ray(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    t0 = time.perf_counter()
    proc = run_cli(
        "platform.tune",
        *SMOKE,
        "--out",
        str(tmp_path / "exp"),
        "--set",
        f"tracking.uri={url}",
        timeout=120,
    )
    assert proc.returncode == 2 and time.perf_counter() - t0 < 60, proc.stderr[-2000:]
    assert f"error: tracking.uri '{url}': no MLflow server answers there" in proc.stderr
    assert "Started a local Ray instance" not in proc.stdout + proc.stderr and not (tmp_path / "exp").exists()
