"""The training loop's GPU-minded parts, on the CPU: a deferred non-finite check, fp16 + GradScaler, the log line,
and evaluation outputs that cross to the host once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from elm.config import from_dict, set_keys
from elm.train import NonFiniteLossError, _FiniteGuard, fit, predict
from elm.types import ModelOutput
from tests.conftest import tiny_raw


def test_guard_keeps_the_first_non_finite_step() -> None:
    guard = _FiniteGuard(torch.device("cpu"))
    for step, value in enumerate([1.0, 2.0, float("nan"), float("inf"), 3.0]):
        guard.record(torch.tensor(value), step)
    step, value = guard.first_bad()
    assert step == 2 and value != value  # NaN
    clean = _FiniteGuard(torch.device("cpu"))
    clean.record(torch.tensor(0.5), 0)
    assert clean.first_bad() is None


@pytest.mark.parametrize("every", [1, 3, 1000])
def test_a_deferred_check_names_the_first_bad_step_and_writes_no_checkpoint_after_it(
    tmp_path: Path, every: int
) -> None:
    cfg = from_dict(
        set_keys(
            tiny_raw(loss={"name": "cross_entropy"}),
            {"optim.lr": 1e30, "optim.epochs": 3, "train.check_finite_every": every},
        )
    )
    with pytest.raises(NonFiniteLossError, match=r"training loss is (nan|inf) at epoch 1, step \d+ \(lr .*kept"):
        fit(cfg, lambda r: None, run_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_the_first_bad_step_does_not_depend_on_the_check_interval(tmp_path: Path) -> None:
    messages = []
    for every in (1, 7):
        cfg = from_dict(
            set_keys(
                tiny_raw(loss={"name": "cross_entropy"}),
                {"optim.lr": 1e30, "optim.epochs": 2, "train.check_finite_every": every},
            )
        )
        with pytest.raises(NonFiniteLossError) as e:
            fit(cfg, lambda r: None)
        messages.append(str(e.value))
    assert messages[0] == messages[1]


def test_fp16_with_a_grad_scaler_trains(one_torch_thread: None) -> None:
    cfg = from_dict(
        set_keys(
            tiny_raw(loss={"name": "cross_entropy"}),
            {"optim.epochs": 3, "optim.lr": 0.1, "train.bf16": False, "train.fp16": True},
        )
    )
    reports = []
    fit(cfg, reports.append)
    losses = [r.metrics["train/loss"] for r in reports]
    assert all(v == v for v in losses) and losses[-1] < losses[0]


def test_precision_is_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    fit(from_dict(set_keys(tiny_raw(), {"optim.epochs": 2, "train.bf16": False})), lambda r: None)
    out = capsys.readouterr()
    assert out.out.count("elm.train: fp32 on cpu (train.bf16 is false)") == 1 and out.err == ""


class _Recorder(nn.Module):
    """Returns its input as logits, and twice it as embeddings."""

    def forward(self, x: torch.Tensor) -> ModelOutput:
        return ModelOutput(logits=x.flatten(1), embeddings=x.flatten(1) * 2)


def test_predict_concatenates_in_order_on_the_cpu_in_float32() -> None:
    xs = [torch.randn(3, 2, 1, 1), torch.randn(2, 2, 1, 1)]
    batches = iter([(xs[0], torch.tensor([0, 1, 2])), (xs[1], torch.tensor([3, 4]))])
    logits, embs, projs, ys = predict(_Recorder(), batches, torch.device("cpu"), bf16="auto", channels_last=False)
    want = torch.cat([x.flatten(1) for x in xs])
    assert logits.dtype == torch.float32 and logits.device.type == "cpu" and projs is None
    assert torch.allclose(logits, want, atol=1e-2) and torch.equal(ys, torch.arange(5))
    assert torch.allclose(embs, 2 * want, atol=2e-2)


def test_fp16_resume_is_exact_because_the_loss_scale_is_checkpointed(tmp_path: Path, one_torch_thread: None) -> None:
    """Two fp16 epochs straight == one epoch, stop, resume (the GradScaler's scale and growth tracker travel in the
    checkpoint; a fresh scaler would skip different steps)."""
    raw = set_keys(
        tiny_raw(loss={"name": "cross_entropy"}), {"optim.epochs": 2, "train.bf16": False, "train.fp16": True}
    )
    cfg = from_dict(raw)
    fit(cfg, lambda r: None, run_dir=tmp_path / "a")
    fit(from_dict(set_keys(raw, {"optim.epochs": 1})), lambda r: None, run_dir=tmp_path / "b")
    state = torch.load(tmp_path / "b/checkpoints/epoch_0001/state.pt", weights_only=False)
    assert state["grad_scaler"]["scale"] > 0
    fit(cfg, lambda r: None, run_dir=tmp_path / "b", resume_from=tmp_path / "b")
    a = torch.load(tmp_path / "a/checkpoints/epoch_0002/state.pt", weights_only=False)
    b = torch.load(tmp_path / "b/checkpoints/epoch_0002/state.pt", weights_only=False)
    assert a["grad_scaler"] == b["grad_scaler"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_evaluation_runs_in_the_precision_the_run_trains_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """train.fp16 with bf16: auto on a device with native bf16: training and evaluation both in fp16 (evaluation
    once read train.bf16 alone and ran in bf16)."""
    import elm.precision
    import elm.train

    monkeypatch.setattr(elm.precision, "_cached_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    used: list[str] = []
    real = elm.train._autocast

    def recording(device: torch.device, precision: str):  # type: ignore[no-untyped-def]
        used.append(precision)
        return real(device, precision)  # type: ignore[arg-type]

    monkeypatch.setattr(elm.train, "_autocast", recording)
    cfg = from_dict(
        set_keys(
            tiny_raw(loss={"name": "cross_entropy"}), {"optim.epochs": 1, "train.bf16": "auto", "train.fp16": True}
        )
    )
    fit(cfg, lambda r: None)
    assert set(used) == {"fp16"}
