"""The trainer: it learns, reports, resumes exactly, and stops clearly on a non-finite loss."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from elm.config import ConfigError, from_dict, set_keys
from elm.train import EpochReport, NonFiniteLossError, build_experiment, fit, main
from tests.conftest import tiny_raw


def test_fit_learns_and_reports_every_epoch() -> None:
    raw = set_keys(tiny_raw(loss={"name": "cross_entropy"}), {"optim.epochs": 6, "optim.lr": 0.1})
    cfg = from_dict(raw)
    reports: list[EpochReport] = []
    final = fit(cfg, reports.append)
    assert [r.epoch for r in reports] == list(range(1, 7))
    assert reports[-1].metrics["train/loss"] < reports[0].metrics["train/loss"]
    n_classes = 5
    assert final["test/acc"] > 1.5 / n_classes  # well above chance on separable blobs
    for key in ("test/balanced_acc", "test/acc_medium", "test/acc_few", "test/ece", "test/posthoc_tau1/balanced_acc",
                "test/logit_margin/mean", "test/embedding/spread_mean"):
        assert key in final and math.isfinite(final[key]), key
    assert reports[-1].per_class is not None and len(reports[-1].per_class) == n_classes
    json.dumps(reports[-1].per_class)


def test_elm_loss_reports_both_terms() -> None:
    reports: list[EpochReport] = []
    fit(from_dict(tiny_raw()), reports.append)
    assert {"train/loss_logit", "train/loss_embedding"} <= set(reports[0].metrics)


def test_resume_is_exact(tmp_path: Path) -> None:
    """Two epochs straight == one epoch, stop, resume for the second (weights and metrics)."""
    cfg = from_dict(set_keys(tiny_raw(), {"optim.epochs": 2}))
    straight: list[EpochReport] = []
    fit(cfg, straight.append, run_dir=tmp_path / "a")
    first: list[EpochReport] = []
    fit(from_dict(set_keys(cfg.to_dict(), {"optim.epochs": 1})), first.append, run_dir=tmp_path / "b")
    # The 1-epoch run's checkpoint is epoch 1 of the same 2-epoch trajectory only if nothing depends on total
    # epochs in epoch 1 (true with a constant schedule); resume it under the 2-epoch config.
    resumed: list[EpochReport] = []
    fit(cfg, resumed.append, run_dir=tmp_path / "b", resume_from=tmp_path / "b")
    assert [r.epoch for r in resumed] == [2]
    assert [h["epoch"] for h in resumed[0].restored_history] == [1.0]  # for trackers that missed epoch 1
    assert resumed[0].restored_history[0]["train/loss"] == first[0].metrics["train/loss"]
    assert straight[1].restored_history is None
    a = torch.load(tmp_path / "a/checkpoints/epoch_0002/state.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b/checkpoints/epoch_0002/state.pt", weights_only=False)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed[0].metrics["test/balanced_acc"] == straight[1].metrics["test/balanced_acc"]
    assert resumed[0].metrics["train/loss"] == straight[1].metrics["train/loss"]


def test_nonfinite_loss_stops_with_a_clear_error_and_keeps_checkpoints(tmp_path: Path) -> None:
    cfg = from_dict(set_keys(tiny_raw(loss={"name": "cross_entropy"}), {"optim.lr": 1e30, "optim.epochs": 3}))
    with pytest.raises(NonFiniteLossError, match=r"training loss is (nan|inf).*epoch \d+, step \d+"):
        fit(cfg, lambda r: None, run_dir=tmp_path)


def test_projection_loss_on_a_model_without_head_is_rejected() -> None:
    cfg = from_dict(set_keys(tiny_raw(), {"model.projection_dim": None}))
    exp_or_error = None
    try:
        exp_or_error = build_experiment(cfg)
    except ConfigError as e:
        assert "projection" in str(e)
    if exp_or_error is not None:  # the ELM loss may fall back to embeddings: then it must still train
        fit(cfg, lambda r: None, experiment=exp_or_error)


def test_cli_runs_and_writes_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_raw()))
    out = tmp_path / "run"
    assert main([str(path), "--set", "optim.epochs=1", "--out", str(out)]) == 0
    assert json.loads((out / "final.json").read_text())["epoch"] == 1.0
    assert (out / "per_class.json").is_file() and (out / "config.yaml").is_file()
    assert main([str(path), "--set", "loss.tau=-3", "--out", str(out)]) == 2
    assert "loss.tau=-3" in capsys.readouterr().err


def test_fit_trains_on_the_weighted_elm_loss_lam_times_the_embedding_term() -> None:
    """lam = 0 must train exactly like the LA loss; a larger lam must change the trajectory (regression: the
    trainer once summed the unweighted terms, so every lam trained as lam = 1)."""
    def run(loss: dict) -> list[EpochReport]:
        reports: list[EpochReport] = []
        fit(from_dict(set_keys(tiny_raw(loss=loss), {"optim.epochs": 2})), reports.append)
        return reports

    la = run({"name": "logit_adjusted", "tau": 1.0})
    lam0 = run({"name": "elm", "tau": 1.0, "lam": 0.0})
    assert lam0[-1].metrics["train/loss"] == pytest.approx(la[-1].metrics["train/loss"], rel=1e-6)
    assert lam0[-1].metrics["test/logit_margin/mean"] == pytest.approx(la[-1].metrics["test/logit_margin/mean"],
                                                                       rel=1e-5)
    small, big = run({"name": "elm", "tau": 1.0, "lam": 0.01}), run({"name": "elm", "tau": 1.0, "lam": 1.0})
    for r in (small[0], big[0]):  # epoch 1's reported loss is the lam-weighted sum of its reported parts
        m, lam = r.metrics, (0.01 if r is small[0] else 1.0)
        assert m["train/loss"] == pytest.approx(m["train/loss_logit"] + lam * m["train/loss_embedding"], rel=1e-5)
    assert small[-1].metrics["train/loss_logit"] != pytest.approx(big[-1].metrics["train/loss_logit"], rel=1e-3)


def test_resuming_a_finished_run_trains_nothing_and_reports_its_last_epoch_again(tmp_path: Path) -> None:
    cfg = from_dict(set_keys(tiny_raw(), {"optim.epochs": 2}))
    first: list[EpochReport] = []
    final = fit(cfg, first.append, run_dir=tmp_path)
    again: list[EpochReport] = []
    assert fit(cfg, again.append, run_dir=tmp_path, resume_from=tmp_path) == final
    assert [r.epoch for r in again] == [2] and again[0].metrics == first[-1].metrics
    assert [h["epoch"] for h in again[0].restored_history] == [1.0] and again[0].checkpoint is None
