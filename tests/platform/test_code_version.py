"""A trial refuses to train on other sources than the ones its sweep was planned with (platform.code_version)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from platform.code_version import (
    CodeChangedError,
    changed_files,
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
