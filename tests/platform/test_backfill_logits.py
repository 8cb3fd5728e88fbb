"""platform.backfill_logits: a finished trial's final checkpoint evaluated again gives the logits fit stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from elm.checkpoint import checkpoint_name, save_checkpoint
from elm.config import from_dict
from elm.metrics.stored_logits import STORED_LOGITS_FILE, load_stored_logits
from elm.train import fit
from platform.backfill_logits import backfill_checkpoint, final_checkpoint_of, stored_logits_in_run_folder
from tests.conftest import tiny_raw


def test_backfill_reproduces_what_fit_stored_in_the_last_checkpoint(tmp_path: Path, one_torch_thread: None) -> None:
    raw = tiny_raw()
    raw["data"]["val_per_class"] = 4
    raw["train"]["eval_split"] = "val"
    run = tmp_path / "train" / "tiny-trial=t1"
    fit(from_dict(raw), lambda r: None, run_dir=run)
    ckpt = final_checkpoint_of(run)
    assert ckpt is not None and ckpt.name == "epoch_0002"
    stored = load_stored_logits(ckpt / STORED_LOGITS_FILE)
    assert set(stored.splits) == {"val", "test"}
    assert stored_logits_in_run_folder(tmp_path, "tiny-trial=t1") == ckpt / STORED_LOGITS_FILE
    (ckpt / STORED_LOGITS_FILE).unlink()
    assert stored_logits_in_run_folder(tmp_path, "tiny-trial=t1") is None
    again = load_stored_logits(backfill_checkpoint(ckpt))
    for split, (logits, labels) in stored.splits.items():
        assert np.array_equal(again.splits[split][1], labels)
        assert np.allclose(again.splits[split][0], logits, atol=1e-2)
    assert np.array_equal(again.class_counts, stored.class_counts)


def test_a_trial_stopped_before_its_last_epoch_has_no_final_checkpoint(tmp_path: Path) -> None:
    raw = tiny_raw()
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / checkpoint_name(1), {"epoch": 1, "config": raw})  # of 2 epochs
    assert final_checkpoint_of(run) is None
    save_checkpoint(run / "checkpoints" / checkpoint_name(2), {"epoch": 2, "config": raw})
    assert final_checkpoint_of(run) == run / "checkpoints" / checkpoint_name(2)
    assert final_checkpoint_of(tmp_path / "nothing") is None
