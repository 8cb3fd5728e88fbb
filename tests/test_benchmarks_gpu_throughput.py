"""benchmarks.gpu_throughput at --tiny size on the CPU: every variant's code path, the concurrent worker and its
barrier, the goal verdicts, and that it needs no Ray, Optuna or MLflow; benchmarks.file_decode at toy size."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from benchmarks import gpu_throughput as bench
from tests.conftest import REPO_ROOT


def test_tiny_run_measures_b_c_d_and_writes_the_goals(
    tmp_path: Path, one_torch_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    assert bench.main(["--tiny", "--device", "cpu", "--concurrent", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert all(r[k] > 0 for k in "bcd") and set(r["goals"]) == {"b/c", "b/d", "concurrent 4/1"}
    assert "these figures mean nothing" in capsys.readouterr().out


def test_a_concurrent_worker_waits_at_the_barrier_then_reports_one_json_line(
    tmp_path: Path, one_torch_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = bench.parse_args(
        ["--tiny", "--device", "cpu", "--worker", "0", "--barrier", str(tmp_path), "--parties", "1"]
    )
    assert bench.worker_main(args) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["images_per_sec"] > 0 and line["end"] > line["start"]
    assert (tmp_path / "ready.0").is_file()


def test_the_barrier_times_out_naming_how_many_arrived(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError, match="only 1 of 2 workers"):
        bench.file_barrier(tmp_path, parties=2, me=0, timeout_s=0.05)()


def test_verdicts() -> None:
    assert bench.verdict(0.95, 0.9) == "0.95 (met, goal >= 0.9)"
    assert bench.verdict(2.0, 3.0) == "2.00 (not met, goal >= 3)"
    assert bench.verdict(None, 2.5) == "-"


def test_it_imports_no_ray_optuna_or_mlflow() -> None:
    tree = ast.parse((REPO_ROOT / "benchmarks" / "gpu_throughput.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not names & {"ray", "optuna", "mlflow", "platform"}


def test_real_data_is_required_outside_tiny() -> None:
    with pytest.raises(SystemExit, match="--data-root is required"):
        bench.data_spec(None, tiny=False)


@pytest.mark.slow
def test_tiny_run_with_concurrent_processes(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert bench.main(["--tiny", "--device", "cpu", "--concurrent", "1", "2", "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())["concurrent"]) == {"1", "2"}


def test_file_decode_benchmark_runs_at_toy_size(one_torch_thread: None, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import file_decode

    assert file_decode.main(["--images", "4", "--workers", "0", "--size", "32", "--epochs", "1"]) == 0
    assert "workers=0:" in capsys.readouterr().out
