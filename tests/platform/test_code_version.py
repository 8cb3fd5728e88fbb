"""A trial refuses to train on other sources than the ones its sweep was planned with (platform.code_version)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from elm.config import ConfigError
from platform.code_version import (
    CodeChangedError,
    changed_files,
    check_code_on_resume,
    check_same_code,
    code_root,
    same_code_trainable,
    source_digests,
)


def _tree(root: Path) -> None:
    (root / "elm" / "losses").mkdir(parents=True)
    (root / "platform" / "__pycache__").mkdir(parents=True)
    (root / "elm" / "__init__.py").write_text("")
    (root / "elm" / "losses" / "la.py").write_text("TAU = 1.0\n")
    (root / "platform" / "tune.py").write_text("print('tune')\n")
    (root / "platform" / "__pycache__" / "tune.cpython-311.py").write_text("stale\n")  # never part of the code
    (root / "platform" / "notes.md").write_text("not code\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("pass\n")  # outside the packages a trial imports


def test_digests_are_the_sha256_of_every_source_file_of_both_packages(tmp_path: Path) -> None:
    _tree(tmp_path)
    expected = {
        rel: hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest()
        for rel in ("elm/__init__.py", "elm/losses/la.py", "platform/tune.py")
    }
    assert source_digests(tmp_path) == expected


def test_an_edited_added_or_removed_file_is_named(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = source_digests(tmp_path)
    check_same_code(before, tmp_path)  # unchanged: no error

    (tmp_path / "elm" / "losses" / "la.py").write_text("TAU = 2.0\n")
    (tmp_path / "platform" / "launch.py").write_text("\n")
    (tmp_path / "platform" / "tune.py").unlink()
    assert changed_files(before, source_digests(tmp_path)) == [
        "elm/losses/la.py",
        "platform/launch.py",
        "platform/tune.py",
    ]
    with pytest.raises(CodeChangedError) as info:
        check_same_code(before, tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "3 file(s)" in message and "elm/losses/la.py" in message and str(tmp_path) in message


def test_long_lists_are_cut_after_three_names(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = source_digests(tmp_path)
    for i in range(5):
        (tmp_path / "elm" / f"new_{i}.py").write_text("\n")
    with pytest.raises(CodeChangedError, match=r"5 file\(s\): elm/new_0.py, elm/new_1.py, elm/new_2.py and 2 more"):
        check_same_code(before, tmp_path)


def test_the_trainable_runs_the_target_on_the_same_code_and_keeps_its_name() -> None:
    calls = []

    def train_in_trial_fn(config: dict, *, base: dict, cpus: float) -> str:
        calls.append((config, base, cpus))
        return "done"

    trainable = same_code_trainable(train_in_trial_fn)
    assert trainable.__name__ == "train_in_trial_fn"  # trial names and Tuner.restore's name check
    assert trainable({"seed": 1}, code=source_digests(), base={"a": 1}, cpus=2.0) == "done"
    assert calls == [({"seed": 1}, {"a": 1}, 2.0)]


def test_on_other_code_the_target_never_runs_and_the_failure_is_reported_once(monkeypatch) -> None:
    import ray.tune

    reports = []
    monkeypatch.setattr(ray.tune, "report", lambda metrics: reports.append(metrics))
    planned = dict(source_digests())
    planned["elm/losses/la.py"] = "0" * 64  # as if the driver had planned with another version of this file
    called = []
    trainable = same_code_trainable(lambda config, **params: called.append(config))
    with pytest.raises(CodeChangedError, match=r"1 file\(s\): elm/losses/la.py"):
        trainable({}, code=planned)
    assert called == []
    from platform.failures import FAILURE_KEY

    assert len(reports) == 1 and reports[0][FAILURE_KEY].startswith("CodeChangedError: the code in ")


def test_the_code_root_is_the_checkout_these_tests_import() -> None:
    import elm

    assert code_root() == Path(elm.__file__).resolve().parent.parent


def test_editor_lock_files_hidden_files_and_links_are_not_code(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = source_digests(tmp_path)
    (tmp_path / "elm" / ".#la.py").symlink_to("user@host.1234:1700000000")  # Emacs' lock: a dangling link
    (tmp_path / "platform" / ".hidden.py").write_text("x = 1\n")
    assert source_digests(tmp_path) == before


def test_a_file_that_cannot_be_read_counts_as_changed(tmp_path: Path, monkeypatch) -> None:
    _tree(tmp_path)
    before = source_digests(tmp_path)
    real_read = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "la.py":
            raise FileNotFoundError(self)  # removed between listing and reading (a checkout switching branch)
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert changed_files(before, source_digests(tmp_path)) == ["elm/losses/la.py"]


def test_resume_refuses_changed_sources_in_one_line_unless_allowed(tmp_path: Path, capsys) -> None:
    _tree(tmp_path)
    record = tmp_path / "exp" / "code_digests.json"
    check_code_on_resume(record, source_digests(tmp_path), allow=False)  # a sweep from before digests were kept
    record.parent.mkdir()
    record.write_text(json.dumps(source_digests(tmp_path)))
    check_code_on_resume(record, source_digests(tmp_path), allow=False)  # unchanged: resumes
    (tmp_path / "elm" / "losses" / "la.py").write_text("TAU = 2.0\n")
    with pytest.raises(ConfigError) as info:
        check_code_on_resume(record, source_digests(tmp_path), allow=False)
    assert "\n" not in str(info.value)
    assert "1 source file(s) changed" in str(info.value) and "elm/losses/la.py" in str(info.value)
    assert "--allow-code-change" in str(info.value)
    check_code_on_resume(record, source_digests(tmp_path), allow=True)
    assert "elm/losses/la.py" in capsys.readouterr().out


def test_a_started_sweep_records_its_digests_and_its_plan_carries_them(tmp_path: Path) -> None:
    from platform.plan import record_start
    from platform.tune import make_plan

    plan = make_plan("ablations/smoke.yaml", {}, smoke_run=True, out=str(tmp_path / "exp"), check_data=False)
    assert plan.code == source_digests()
    plan.out.mkdir(parents=True)
    record_start(plan)
    assert json.loads(plan.layout.code.read_text()) == source_digests()


def test_a_ray_train_worker_on_other_code_records_a_failure_and_never_trains(tmp_path: Path, monkeypatch) -> None:
    import ray.train

    from platform.trainables import worker

    recorded = []
    monkeypatch.setattr(ray.train, "get_context", lambda: type("C", (), {"get_world_rank": lambda self: 0})())
    monkeypatch.setattr(worker, "record_failure", lambda e, path, report: recorded.append((type(e), path)))
    monkeypatch.setattr(worker, "fit", lambda *a, **k: pytest.fail("a worker on other code must not train"))
    planned = {**source_digests(), "platform/trainables/worker.py": "0" * 64}
    worker.train_fn_per_worker({"config": {}, "failure_file": tmp_path / "failure.txt", "code": planned})
    assert recorded == [(CodeChangedError, tmp_path / "failure.txt")]
