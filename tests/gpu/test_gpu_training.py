"""On a CUDA machine: training on the GPU matches the CPU, the on-device data path, mixed precision, the deferred
non-finite check, and fractional GPUs in a real Tune run. Skipped without CUDA, and deselected by default
(marker `gpu`): run ``python -m pytest -m gpu tests/gpu``. Needs torch only, except the Tune run (skipped
without ray)."""

from __future__ import annotations

import csv
import math
import warnings
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from elm.config import from_dict, set_keys
from elm.data.base import TensorSplit, splits_on
from elm.data.loaders import iterate_batches
from elm.precision import autocast, choose_precision
from elm.train import EpochReport, NonFiniteLossError, _Loop, build_experiment, fit
from tests.conftest import REPO_ROOT, tiny_raw

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CUDA = torch.device("cuda", 0)
CONV = {
    "data": {"name": "synthetic_lt", "num_classes": 5, "image_size": 16, "n_max": 64, "imbalance_ratio": 10},
    "model": {"name": "resnet32"},
    "loss": {"name": "cross_entropy"},
}


def one_epoch(raw: dict[str, Any], device: torch.device) -> dict[str, float]:
    reports: list[EpochReport] = []
    fit(from_dict(raw), reports.append, device=device)
    return reports[-1].metrics


@pytest.mark.parametrize("extra", [{}, CONV], ids=["tiny_mlp", "resnet32"])
def test_one_epoch_on_cuda_matches_the_cpu(extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # fp32 convolutions, as on the CPU
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    raw = set_keys(tiny_raw(**extra), {"optim.epochs": 1, "train.bf16": False, "train.cudnn_benchmark": False})
    cpu, gpu = one_epoch(raw, torch.device("cpu")), one_epoch(raw, CUDA)
    # Same batches and fp32 on both; only reduction orders differ.
    assert gpu["train/loss"] == pytest.approx(cpu["train/loss"], rel=1e-2)
    for key in ("test/acc", "test/balanced_acc"):  # a flipped prediction or two among 80 test images
        assert gpu[key] == pytest.approx(cpu[key], abs=0.05), key


@pytest.mark.parametrize("views", [1, 2])
def test_batches_built_on_the_gpu_are_bit_identical_to_the_cpu_ones(views: int) -> None:
    g = torch.Generator().manual_seed(0)
    split = TensorSplit(torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(300) % 10)
    kw = dict(batch_size=64, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26), image_size=32, seed=3, epoch=5)
    for train in (True, False):
        cpu = list(iterate_batches(split, train=train, views=views, **kw))
        gpu = list(iterate_batches(split.to(CUDA), train=train, views=views, **kw))
        assert len(cpu) == len(gpu)
        for (x, y), (gx, gy) in zip(cpu, gpu):
            assert gx.device.type == CUDA.type and torch.equal(gx.cpu(), x) and torch.equal(gy.cpu(), y)


def test_fit_on_cuda_keeps_the_data_on_the_device_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    raw = set_keys(tiny_raw(**CONV), {"optim.epochs": 1})
    one_epoch(raw, CUDA)
    assert "in-memory data on cuda:0" in capsys.readouterr().out
    exp = build_experiment(from_dict(raw))
    assert exp.data.train.images.device.type == "cpu"  # fit moves its own copy; the caller's data stays put


def test_auto_precision_on_this_gpu_follows_its_bf16_support() -> None:
    choice = choose_precision("auto", False, CUDA)
    assert choice.precision == ("bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_loss_is_close_to_fp32_and_training_learns(precision: str) -> None:
    exp = build_experiment(from_dict(tiny_raw(**CONV)))
    model = exp.model.to(CUDA).to(memory_format=torch.channels_last)
    x = (exp.data.train.images[:64].float() / 255).to(CUDA).contiguous(memory_format=torch.channels_last)
    y = exp.data.train.labels[:64].to(CUDA)
    ref = torch.nn.functional.cross_entropy(model(x).logits.float(), y)
    with autocast(CUDA, precision):  # type: ignore[arg-type]
        low = torch.nn.functional.cross_entropy(model(x).logits.float(), y)
    assert low.item() == pytest.approx(ref.item(), rel=2e-2)
    raw = set_keys(
        tiny_raw(**CONV),
        {"optim.epochs": 4, "optim.lr": 0.01, "train.bf16": precision == "bf16", "train.fp16": precision == "fp16"},
    )
    reports: list[EpochReport] = []
    fit(from_dict(raw), reports.append, device=CUDA)
    losses = [r.metrics["train/loss"] for r in reports]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def test_a_non_finite_loss_on_cuda_names_its_first_step(tmp_path: Path) -> None:
    raw = set_keys(
        tiny_raw(loss={"name": "cross_entropy"}), {"optim.lr": 1e30, "optim.epochs": 2, "train.check_finite_every": 4}
    )
    with pytest.raises(NonFiniteLossError, match=r"training loss is (nan|inf) at epoch 1, step \d+"):
        fit(from_dict(raw), lambda r: None, run_dir=tmp_path, device=CUDA)


def test_two_half_gpu_trials_share_one_gpu_in_a_real_tune_run(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    raw = tiny_raw(**CONV)
    raw["optim"]["epochs"] = 2
    raw["ablation"] = {"seeds": [0, 1], "variants": {"ce": {"loss": {"name": "cross_entropy"}}}}
    raw["tune"] = {"searcher": "grid", "scheduler": "fifo", "metric": "test/balanced_acc", "mode": "max"}
    raw["resources"] = {"num_workers": 1, "cpus_per_worker": 1, "gpus_per_worker": 0.5}
    path = tmp_path / "half.yaml"
    path.write_text(yaml.safe_dump(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "platform.tune", str(path), "--out", str(tmp_path / "out")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with (tmp_path / "out" / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["status"] == "finished" and int(r["epochs"]) == 2 for r in rows)


ELM = {
    "model": {"name": "resnet32", "projection_dim": 8},
    "loss": {"name": "elm", "tau": 1.0, "lam": 0.1, "margin": 0.1},
}


@pytest.mark.parametrize("extra", [{}, ELM], ids=["cross_entropy", "elm_two_views"])
def test_a_training_epoch_waits_for_the_gpu_only_at_its_checks(extra: dict[str, Any]) -> None:
    """CUDA's sync debug mode flags every host sync: an epoch of 24 steps with a check every 12 may have a few
    (the checks, the epoch's metrics, constants copied once), never one per step."""
    cfg = from_dict(
        set_keys(
            tiny_raw(**{**CONV, **extra}),
            {
                "optim.batch_size": 8,
                "train.max_steps_per_epoch": 24,
                "train.check_finite_every": 12,
                "train.data_on_device": True,
            },
        )
    )
    exp = build_experiment(cfg)
    model = exp.model.to(CUDA)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loop = _Loop.build(cfg, model, exp.loss.to(CUDA), splits_on(exp.data, CUDA), opt, CUDA, 0, 1, False)
    loop.train_epoch(0)  # warm-up: cuDNN autotuning and allocator growth
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            loop.train_epoch(1)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) < 12, [str(w.message)[:120] for w in syncs]
