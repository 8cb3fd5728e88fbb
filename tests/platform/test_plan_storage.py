"""--storage / tune.storage in the plan: saved with the sweep, mirrored for a driver on another machine, and a sweep
folder made before storage existed resumes with its checkpoints where they are."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from elm.config import ConfigError
from platform.plan import make_plan, record_start
from tests.conftest import tiny_raw

SWEEP = {"search": {"spaces": ["elm_joint"]}, "tune": {"searcher": "optuna", "num_samples": 3}}


def write(tmp_path: Path, raw: dict) -> str:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_without_storage_the_sweep_keeps_ray_and_train_in_its_folder(tmp_path: Path) -> None:
    plan = make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out=str(tmp_path / "out"))
    assert plan.spec.tune.storage is None and plan.storage.local() == tmp_path / "out"


def test_a_relative_storage_folder_is_saved_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plan = make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out="out", storage="shared")
    assert plan.spec.tune.storage == str(tmp_path / "shared")
    assert plan.storage.local() == tmp_path / "shared" / "out"
    assert "storage: " + str(tmp_path / "shared") in plan.cfg.to_yaml()  # --resume reads it back


def test_resume_fetches_the_saved_config_from_storage_when_the_folder_lacks_it(tmp_path: Path) -> None:
    config = write(tmp_path, tiny_raw(**SWEEP))
    started = make_plan(config, {}, out=str(tmp_path / "first"), storage=str(tmp_path / "shared"))
    started.out.mkdir()
    record_start(started)
    assert (tmp_path / "shared" / "first" / "config.yaml").is_file()
    # A driver on another machine: an empty --out of the same name, the same --storage.
    again = make_plan(
        config, {}, out=str(tmp_path / "elsewhere" / "first"), storage=str(tmp_path / "shared"), resume=True
    )
    assert again.sweep_id == started.sweep_id and again.storage == started.storage


def test_resume_with_another_storage_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, tiny_raw(**SWEEP))
    (tmp_path / "out").mkdir()
    record_start(make_plan(config, {}, out=str(tmp_path / "out")))
    with pytest.raises(ConfigError, match=r"--resume: this sweep keeps its state in .*/out, not in .*other/out"):
        make_plan(config, {}, out=str(tmp_path / "out"), storage=str(tmp_path / "other"), resume=True)


def test_a_sweep_folder_from_before_storage_resumes_from_its_own_folder(tmp_path: Path) -> None:
    """config.yaml as today's code saved it (no tune.storage): ray/ and train/ stay where they are."""
    from platform.launch import make_trainable

    config = write(tmp_path, tiny_raw(**SWEEP))
    started = make_plan(config, {}, out=str(tmp_path / "old"))
    started.out.mkdir()
    record_start(started)
    assert "storage" not in yaml.safe_load((tmp_path / "old" / "config.yaml").read_text()).get("tune", {})
    plan = make_plan(config, {}, out=str(tmp_path / "old"), resume=True)
    assert plan.storage.local() == tmp_path / "old"
    trainable = make_trainable(plan)
    assert trainable.__name__ == "train_in_trial_fn"  # the name Tune pickled; restore refuses another


def test_a_storage_folder_that_is_a_file_is_refused_before_ray(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"--storage .*file: .*file is not a writable folder"):
        make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out=str(tmp_path / "out"), storage=str(tmp_path / "file"))


def test_cli_storage_that_cannot_work_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from platform.tune import main

    (tmp_path / "file").write_text("x")
    code = main(
        [
            write(tmp_path, tiny_raw(**SWEEP)),
            "--out",
            str(tmp_path / "out"),
            "--storage",
            str(tmp_path / "file" / "sub"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"error: --storage {tmp_path / 'file' / 'sub'}: ")
    assert not (tmp_path / "out").exists()


def test_resume_with_a_tracking_server_that_is_down_is_refused_before_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server answered when the sweep started and is down now: --resume must fail in the plan, not hang in
    MLflow's retries once Ray runs."""
    import socket

    import platform.plan as plan_module

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = write(tmp_path, tiny_raw(**SWEEP, tracking={"uri": url}))
    with monkeypatch.context() as m:
        m.setattr(plan_module, "check_tracking_uri", lambda uri: None)  # up at the start
        started = make_plan(config, {}, out=str(tmp_path / "out"))
    started.out.mkdir()
    record_start(started)
    with pytest.raises(ConfigError, match=r"tracking.uri 'http://127.0.0.1:\d+': no MLflow server answers there"):
        make_plan(config, {}, out=str(tmp_path / "out"), resume=True)


@pytest.mark.parametrize("typo", ["s3:/bucket/prefix", "gs:bucket/prefix", "S3:/bucket"])
def test_a_storage_uri_with_a_mistyped_scheme_is_refused_not_made_a_local_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, typo: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"--storage .*: looks like a URI with a mistyped scheme"):
        make_plan(write(tmp_path, tiny_raw(**SWEEP)), {}, out=str(tmp_path / "out"), storage=typo)
    assert not any(p.name.lower().endswith(":") for p in tmp_path.iterdir())
