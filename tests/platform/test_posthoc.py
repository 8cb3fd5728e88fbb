"""platform.posthoc on synthetic stored logits: selection on val, read on test; the tracker logs the file."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pytest
import torch

from elm.metrics.stored_logits import STORED_LOGITS_FILE, StoredLogits, save_stored_logits
from platform import posthoc as ph
from platform import posthoc_trial as pt
from platform.trial_end import log_stored_logits
from tests.logits import head_biased_logits

COUNTS = np.array([400, 250, 120, 60, 30, 12])  # Many x3, Medium x2, Few x1
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small tensors: threads only add synchronisation


def _split(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    f, y = head_biased_logits(torch.from_numpy(COUNTS), n_per_class, seed)
    return f.numpy(), y.numpy()


def _stored(with_val: bool = True) -> StoredLogits:
    splits = {"test": _split(50, 1)}
    if with_val:
        splits["val"] = _split(20, 2)
    return StoredLogits(class_counts=COUNTS, splits=splits)


def test_every_method_is_chosen_on_val_and_read_on_test() -> None:
    a = pt.analyse(_stored())
    df = pd.DataFrame(a.rows)
    assert set(df["selected_on"]) == {"val"}
    uni = df[df["test_prior"] == pt.UNIFORM].set_index("method")
    assert list(uni.index) == [pt.NO_ADJUSTMENT, pt.TAU_ONE, pt.GLOBAL, pt.PER_GROUP]
    # the global tau is the val argmax, and its test value is the test curve there (not the test argmax)
    j = int(np.argmax(a.curve["select"]))
    assert a.tau_star == pt.GLOBAL_TAUS[j]
    assert uni.loc[pt.GLOBAL, "test"] == pytest.approx(a.curve["test"][j])
    assert uni.loc[pt.GLOBAL, "val"] == pytest.approx(max(a.curve["select"]))
    # one tau for all groups is a point of the per-group grid, so the per-group choice is at least as good on val
    on_group_grid = max(a.curve["select"][pt.GLOBAL_TAUS.index(t)] for t in pt.GROUP_TAUS)
    assert uni.loc[pt.PER_GROUP, "val"] >= on_group_grid - 1e-12
    assert {"ece", "ece_many", "ece_medium", "ece_few", "test_acc_few"} <= set(uni.columns)
    shifted = df[df["test_prior"] != pt.UNIFORM]
    assert len(shifted) == 2 * len(pt.SHIFTS) * 4
    # post-hoc adjustment helps balanced accuracy on these head-biased logits
    assert uni.loc[pt.TAU_ONE, "test"] > uni.loc[pt.NO_ADJUSTMENT, "test"]


def test_known_prior_beats_balanced_adjustment_on_a_strong_backward_shift() -> None:
    df = pd.DataFrame(pt.analyse(_stored()).rows)
    b = df[df["test_prior"] == "backward 50"].set_index("method")["test"]
    assert b[pt.KNOWN_PRIOR_ONE] > b[pt.BALANCED_ONLY]


def test_without_a_validation_split_the_choice_is_flagged_as_an_oracle() -> None:
    a = pt.analyse(_stored(with_val=False))
    assert {r["selected_on"] for r in a.rows} == {"test (oracle)"}
    assert a.curve["select"] == a.curve["test"]
    text = ph.markdown(pd.DataFrame([{**r, "group": "ce", "trial": "t1"} for r in a.rows]), [], [0.1], "x")
    assert "optimistic upper bounds" in text


def test_a_cifar_sized_trial_takes_under_a_second() -> None:
    rng = np.random.default_rng(0)
    counts = np.round(5000 * 0.01 ** (np.arange(10) / 9)).astype(int)
    stored = StoredLogits(
        counts,
        {
            "val": (rng.normal(size=(2000, 10)).astype(np.float32), np.repeat(np.arange(10), 200)),
            "test": (rng.normal(size=(10000, 10)).astype(np.float32), np.repeat(np.arange(10), 1000)),
        },
    )
    t0 = time.perf_counter()
    pt.analyse(stored)
    assert time.perf_counter() - t0 < 1.0


def test_markdown_has_both_tables_and_names_missing_trials() -> None:
    rows = [{**r, "group": "ce", "trial": f"t{s}"} for s in range(2) for r in pt.analyse(_stored()).rows]
    text = ph.markdown(pd.DataFrame(rows), ["t9"], [0.2, 0.3], "demo")
    assert "## Balanced test set" in text and "## Shifted test priors" in text
    assert "t9" in text and "± " in text and "read once on test" in text
    assert f"plots/{ph.reliability_file('ce')}" in text


class _Client:
    def __init__(self) -> None:
        self.logged: list[tuple[str, str]] = []

    def log_artifact(self, run_id: str, path: str) -> None:
        self.logged.append((run_id, Path(path).name))


class _Checkpoint:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        yield str(self.folder)


def test_tracker_logs_the_stored_logits_of_the_final_checkpoint_only(tmp_path: Path) -> None:
    client: Any = _Client()
    assert not log_stored_logits(client, "r1", None)
    assert not log_stored_logits(client, "r1", _Checkpoint(tmp_path))  # an early-stopped trial's checkpoint
    f, y = _split(2, 0)
    save_stored_logits(
        tmp_path / STORED_LOGITS_FILE, {"test": (torch.from_numpy(f), torch.from_numpy(y))}, torch.from_numpy(COUNTS)
    )
    assert log_stored_logits(client, "r1", _Checkpoint(tmp_path))
    assert client.logged == [("r1", STORED_LOGITS_FILE)]


class _Trial:
    def __init__(self, checkpoint: Any, last_result: dict[str, Any]) -> None:
        self.checkpoint, self.last_result = checkpoint, last_result


def test_final_checkpoint_is_tunes_own_else_the_ray_train_path_of_the_last_result(tmp_path: Path) -> None:
    from platform.trial_end import TRAIN_CHECKPOINT_KEY, final_checkpoint

    own = _Checkpoint(tmp_path)
    assert final_checkpoint(_Trial(own, {TRAIN_CHECKPOINT_KEY: "/elsewhere"})) is own
    assert final_checkpoint(_Trial(None, {})) is None
    assert Path(final_checkpoint(_Trial(None, {TRAIN_CHECKPOINT_KEY: str(tmp_path)})).path) == tmp_path


def test_markdown_without_any_stored_logits_says_so() -> None:
    text = ph.markdown(pd.DataFrame(), ["t1", "t2"], [], "old")
    assert "No trial stored logits (trials without: t1, t2)" in text and "chosen on" not in text


@pytest.mark.parametrize("content", [b"garbage\n", b""])
def test_a_corrupt_stored_logits_file_is_one_error_line_naming_the_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    import types

    import platform.report as report_module

    bad = tmp_path / STORED_LOGITS_FILE
    bad.write_bytes(content)
    src = types.SimpleNamespace(name="exp", directory=tmp_path, config={}, tracking_uri="sqlite://")
    monkeypatch.setattr(report_module, "resolve", lambda *a: src)
    monkeypatch.setattr(ph, "find_stored_logits", lambda *a: [ph.TrialLogits("run1", "abc123", "ce", 0, bad)])
    assert ph.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: trial abc123: {bad}: not a stored-logits file")


@pytest.mark.parametrize("module", ["platform.posthoc", "platform.report"])
def test_a_tracking_server_that_is_down_is_one_error_line_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], module: str
) -> None:
    """MLflow's client retries an unreachable http store for minutes; the CLIs probe /health first."""
    import importlib
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    t0 = time.perf_counter()
    rc = importlib.import_module(module).main(
        ["x", "--tracking-uri", url, "--experiment", "x", "--out", str(tmp_path / "out")]
    )
    assert rc == 2 and time.perf_counter() - t0 < 20
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: tracking.uri '{url}': no MLflow server answers there")
