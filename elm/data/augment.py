"""Batched CIFAR-style augmentation on uint8 tensors: zero-padded random crop plus horizontal flip.

The standard CIFAR recipe (He et al. 2016, https://arxiv.org/abs/1512.03385, section 4.2: pad 4, random 32x32
crop, random flip), vectorised over the batch with one gather instead of a per-image loop or PIL. It runs on
whichever device holds the images; the offsets are always drawn on the CPU from a CPU generator and copied there
(3 x B integers), so a seed gives the same batches on every device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sample_crop_flip(batch: int, pad: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Draw crop offsets and flips for ``batch`` images, in a fixed order (dy, dx, flip).

    Returns:
        dy, dx: (B,) int64 offsets in [0, 2 * pad] into the padded image.
        flip: (B,) bool, True means mirror left-right.
    """
    dy = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (batch,), generator=generator)
    flip = torch.randint(0, 2, (batch,), generator=generator).bool()
    return dy, dx, flip


def crop_flip(images: Tensor, pad: int, dy: Tensor, dx: Tensor, flip: Tensor) -> Tensor:
    """Zero-pad by ``pad``, crop back to (H, W) at offsets (dy, dx), then mirror where ``flip``.

    Args:
        images: (B, C, H, W), any dtype, on any device.
        pad: zero padding on every side.
        dy, dx: (B,) int64 crop offsets into the padded image, in [0, 2 * pad], on ``images``' device.
        flip: (B,) bool, on ``images``' device.
    Returns:
        (B, C, H, W), same dtype and device as ``images``.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p), zeros
    rows = dy[:, None] + torch.arange(h, device=device)  # (B, H)
    cols = dx[:, None] + torch.arange(w, device=device)  # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    return padded[
        torch.arange(b, device=device)[:, None, None, None],
        torch.arange(c, device=device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def random_crop_flip(images: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """Random zero-padded crop and horizontal flip of a batch; randomness only from ``generator``.

    Args:
        images: (B, C, H, W) uint8, on any device.
        pad: zero padding on every side (4 for CIFAR).
        generator: a CPU torch generator; offsets are drawn as ``sample_crop_flip``, then copied to ``images``'
            device in one non-blocking transfer.
    Returns:
        (B, C, H, W) uint8, on ``images``' device.
    Raises:
        ValueError: ``pad`` < 0.
    """
    if pad < 0:
        raise ValueError(f"pad={pad} must be >= 0")
    dy, dx, flip = sample_crop_flip(images.shape[0], pad, generator)
    if images.device.type != "cpu":
        dy, dx, flip = torch.stack([dy, dx, flip.long()]).to(images.device, non_blocking=True)
        flip = flip.bool()
    return crop_flip(images, pad, dy, dx, flip)
