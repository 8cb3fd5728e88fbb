"""A checkout edited while its sweep runs (slow): trials started after the edit stop with one line naming the file,
the trials before it keep their results, and the sweep finishes (platform.code_version).

The sweep runs from a copy of the checkout in tmp_path, so the edit never touches the repository.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.platform.procs import REPO_ROOT, start_cli

pytestmark = pytest.mark.slow


def test_trials_started_after_an_edit_fail_with_the_changed_file_and_the_sweep_goes_on(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    for part in ("elm", "platform", "ablations"):
        shutil.copytree(REPO_ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    out, log = tmp_path / "exp", tmp_path / "sweep.log"
    with log.open("w") as sink:
        sweep = start_cli(
            "platform.tune",
            "ablations/smoke_ablation.yaml",
            "--smoke",
            "--out",
            str(out),
            "--set",
            "tune.max_concurrent=1",
            cwd=checkout,
            stdout=sink,
            stderr=subprocess.STDOUT,
            own_session=False,
        )
        try:
            edited = checkout / "elm" / "losses" / "__init__.py"
            deadline = time.time() + 600
            while not any((out / "train").glob("*-trial=*/checkpoints/*")):  # the first trial trained an epoch
                assert sweep.poll() is None, "the sweep ended before the first trial trained"
                assert time.time() < deadline, "no trial trained within 600 s"
                time.sleep(0.2)
            edited.write_text(edited.read_text() + "\n# edited while the sweep runs\n")
            assert sweep.wait(timeout=900) == 0, log.read_text()[-3000:]
        finally:
            if sweep.poll() is None:
                sweep.kill()
                sweep.wait()

    trials = pd.read_csv(out / "trials.csv")
    finished, failed = trials[trials.status == "finished"], trials[trials.status == "failed"]
    assert len(finished) >= 1 and len(failed) >= 1, trials[["trial_id", "status", "reason"]]
    assert len(finished) + len(failed) == len(trials) == 4  # --smoke: the 4 variants x 1 seed, none lost
    for reason in failed.reason:
        assert reason.startswith("CodeChangedError: the code in ") and "elm/losses/__init__.py" in reason, reason
        assert str(checkout) in reason
    assert (finished.epochs == finished.epochs.max()).all()  # the trials before the edit ran to the end
