"""The trainer: it learns, reports, resumes exactly, and stops clearly on a non-finite loss."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
import yaml

from elm.config import ConfigError, from_dict, set_keys
from elm.data import longtail_counts
from elm.train import EpochReport, NonFiniteLossError, build_experiment, fit, main
from tests.conftest import tiny_raw
from tests.elm.test_data_cifar import write_fake_cifar10


def test_fit_learns_and_reports_every_epoch() -> None:
    raw = set_keys(tiny_raw(loss={"name": "cross_entropy"}), {"optim.epochs": 6, "optim.lr": 0.1})
    cfg = from_dict(raw)
    reports: list[EpochReport] = []
    final = fit(cfg, reports.append)
    assert [r.epoch for r in reports] == list(range(1, 7))
    assert reports[-1].metrics["train/loss"] < reports[0].metrics["train/loss"]
    n_classes = 5
    assert final["test/acc"] > 1.5 / n_classes  # well above chance on separable blobs
    for key in (
        "test/balanced_acc",
        "test/acc_medium",
        "test/acc_few",
        "test/ece",
        "test/posthoc_tau1/balanced_acc",
        "test/logit_margin/mean",
        "test/emb_proj/spread_mean",
        "test/emb_backbone/var_ratio_mean",
        "train/emb_proj/spread_pairwise_mean",
    ):
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
    with pytest.raises(ConfigError, match="reads a projection head but model 'tiny_mlp' has none"):
        build_experiment(cfg)
    # the same model trains when the loss reads the backbone features instead
    build_experiment(from_dict(set_keys(tiny_raw(), {"model.projection_dim": None, "loss.embedding": "embeddings"})))


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
    assert lam0[-1].metrics["test/logit_margin/mean"] == pytest.approx(
        la[-1].metrics["test/logit_margin/mean"], rel=1e-5
    )
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


def write_config(tmp_path: Path, **overrides: object) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_raw(**overrides)))
    return path


def test_cli_shows_a_progress_bar_with_eta_over_each_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    steps = math.ceil(sum(longtail_counts(64, 5, 10.0)) / 32)  # tiny_raw: n_max 64, 5 classes, ratio 10, batch 32
    assert main([str(path), "--set", "optim.epochs=2", "--out", str(tmp_path / "run"), "--progress"]) == 0
    captured = capsys.readouterr()
    for epoch in (1, 2):
        # tqdm: n/total [elapsed<ETA
        assert re.search(rf"epoch {epoch}/2: +\d+%\|.*\| 0/{steps} \[00:00<\?", captured.err)
    assert "step/s" in captured.err and "epoch   2" in captured.out
    assert main([str(path), "--set", "optim.epochs=1", "--out", str(tmp_path / "quiet"), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_fit_shows_no_progress_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    fit(from_dict(set_keys(tiny_raw(), {"optim.epochs": 1})), lambda r: None)
    assert capsys.readouterr().err == ""


def test_progress_trains_exactly_as_without_it() -> None:
    """The bar draws only the epoch's steps (also under a max_steps_per_epoch cap): nothing else may change."""
    cfg = from_dict(set_keys(tiny_raw(), {"optim.epochs": 2, "train.max_steps_per_epoch": 2}))
    plain, shown = [], []
    fit(cfg, plain.append)
    fit(cfg, shown.append, progress=True)
    assert [r.metrics["train/loss"] for r in shown] == [r.metrics["train/loss"] for r in plain]


def test_cli_reports_a_corrupt_cifar_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_fake_cifar10(tmp_path / "data")
    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_4"
    batch.write_bytes(batch.read_bytes()[:1000])
    path = write_config(tmp_path, data={"name": "cifar10_lt", "root": str(tmp_path / "data"), "imbalance_ratio": 2})
    assert main([str(path), "--out", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(batch) in lines[0]
    assert "corrupt or truncated" in lines[0] and "epoch" not in captured.out


def test_cli_rejects_a_ratio_that_empties_a_class_before_any_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    assert main([str(path), "--set", "data.imbalance_ratio=1e3", "--out", str(tmp_path / "run")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: data.imbalance_ratio=1000 leaves class") and "epoch" not in captured.out
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_cli_rejects_an_out_path_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    (tmp_path / "taken").write_text("")
    assert main([str(path), "--out", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {tmp_path / 'taken'}: cannot write the run folder")


def test_cli_accepts_scientific_notation_and_rejects_a_bad_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    out = tmp_path / "run"
    assert main([str(path), "--set", "optim.lr=5e-2", "--set", "optim.epochs=1", "--out", str(out)]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["optim"]["lr"] == 0.05
    assert main([str(path), "--set", "name=tail's sweep", "--out", str(out)]) == 2
    assert "name 'tail's sweep' may only use letters" in capsys.readouterr().err


def test_selection_on_val_measures_test_once_at_the_end(one_torch_thread: None) -> None:
    cfg = from_dict(set_keys(tiny_raw(), {"optim.epochs": 3, "train.eval_split": "val", "data.val_per_class": 4}))
    reports: list = []
    fit(cfg, reports.append)
    evaluated = [
        [k.split("/")[0] for k in r.metrics if k.endswith("/balanced_acc") and "posthoc" not in k] for r in reports
    ]
    assert evaluated == [["val"], ["val"], ["val", "test"]]
