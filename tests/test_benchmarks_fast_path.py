"""The fast path computes the same thing as the plain path, and the FLOP counter matches a hand count.

channels_last (fp32) gives ResNet-32's loss of the contiguous model to 1e-4 relative. Its gradients do NOT always
match to 1e-4: measured with torch 2.14 (oneDNN 3.12) on Zen 4, contiguous fp32 gradients are within ~3e-6 of a
float64 reference, while channels_last ones are sometimes off by up to ~8e-3 per tensor (1 thread, seed 0: median
2e-3; 2 threads: ~2e-5, but seed 2 shows one tensor at 4.5e-3), consistent with ReLU sign flips of near-zero
pre-activations downstream of a less exact kernel. The strict check is an ``xfail`` that records this; the
passing check bounds every tensor by 5e-2 (a layout bug moves gradients by O(1)). bf16 autocast gives the fp32
loss to 2e-2 relative; ``resnet_training_flops_per_image`` equals 3 x 2 x the MACs counted by hand. Runs on one
thread: under CPU contention two OpenMP threads slow these small steps 100x.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import elm.models  # noqa: F401  (registration)
from benchmarks.flops import forward_macs_per_image, resnet_training_flops_per_image
from elm.registry import MODELS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BATCH, CLASSES = 8, 10
GRAD_STRICT_RTOL, GRAD_LOOSE_RTOL = 1e-4, 5e-2


@pytest.fixture(scope="module", params=[0, 2], ids=["seed0", "seed2"])
def resnet32_batch(request: pytest.FixtureRequest) -> tuple[nn.Module, Tensor, Tensor]:
    torch.manual_seed(request.param)
    model = MODELS.build("resnet32", {}, num_classes=CLASSES, in_channels=3)
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, CLASSES, (BATCH,))
    return model, x, y


def loss_and_grads(
    model: nn.Module, x: Tensor, y: Tensor, *, channels_last: bool, bf16: bool
) -> tuple[Tensor, list[Tensor]]:
    m = copy.deepcopy(model).train()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = m(x).logits
    loss = F.cross_entropy(logits.float(), y)
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in m.parameters()]


def rel_err(a: Tensor, b: Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12))


def channels_last_grad_errors(batch: tuple[nn.Module, Tensor, Tensor]) -> tuple[float, list[float]]:
    """Relative loss error and sorted per-parameter-tensor relative gradient errors, channels_last vs contiguous."""
    model, x, y = batch
    loss_ref, grads_ref = loss_and_grads(model, x, y, channels_last=False, bf16=False)
    loss_cl, grads_cl = loss_and_grads(model, x, y, channels_last=True, bf16=False)
    return rel_err(loss_cl, loss_ref), sorted(rel_err(g, r) for g, r in zip(grads_cl, grads_ref))


def test_channels_last_matches_contiguous_fp32(resnet32_batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    loss_err, grad_errs = channels_last_grad_errors(resnet32_batch)
    assert loss_err < 1e-4
    assert grad_errs[-1] < GRAD_LOOSE_RTOL, f"worst per-tensor relative gradient error {grad_errs[-1]:.1e}"


@pytest.mark.xfail(
    reason="channels_last fp32 gradients can differ by up to ~8e-3 relative (see module docstring)", strict=False
)
def test_channels_last_gradients_match_to_1e_4(resnet32_batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    _, grad_errs = channels_last_grad_errors(resnet32_batch)
    assert grad_errs[-1] < GRAD_STRICT_RTOL, f"worst per-tensor relative gradient error {grad_errs[-1]:.1e}"


def test_bf16_autocast_loss_is_close_to_fp32(resnet32_batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, x, y = resnet32_batch
    loss_ref, _ = loss_and_grads(model, x, y, channels_last=False, bf16=False)
    loss_bf16, _ = loss_and_grads(model, x, y, channels_last=True, bf16=True)
    assert rel_err(loss_bf16, loss_ref) < 2e-2


def hand_count_resnet32_macs(num_classes: int) -> int:
    """3x3 convs, no bias: MACs = H_out * W_out * C_out * C_in * 9; 5 blocks of 2 convs per stage."""
    k = 9
    stem = 32 * 32 * 16 * 3 * k
    stage1 = 10 * (32 * 32 * 16 * 16 * k)  # 10 convs 16->16 at 32x32
    stage2 = 16 * 16 * 32 * 16 * k + 9 * (16 * 16 * 32 * 32 * k)  # stride-2 16->32, then 9 convs 32->32 at 16x16
    stage3 = 8 * 8 * 64 * 32 * k + 9 * (8 * 8 * 64 * 64 * k)  # stride-2 32->64, then 9 convs 64->64 at 8x8
    classifier = 64 * num_classes
    return stem + stage1 + stage2 + stage3 + classifier


def test_resnet32_flops_match_hand_count(resnet32_batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, _, _ = resnet32_batch
    macs = hand_count_resnet32_macs(CLASSES)
    assert macs == 68_862_592
    assert forward_macs_per_image(model, (3, 32, 32)) == macs
    assert resnet_training_flops_per_image(model, (3, 32, 32)) == pytest.approx(3 * 2 * macs)
    assert model.training  # counting leaves the mode as it was
