"""Batched crop+flip against a naive per-image reference with the same offsets."""

from __future__ import annotations

import torch

from elm.data.augment import crop_flip, random_crop_flip, sample_crop_flip


def naive_crop_flip(images: torch.Tensor, pad: int, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor):
    """Per-image loop: explicit zero canvas, slice, optional mirror."""
    b, c, h, w = images.shape
    out = torch.empty_like(images)
    for i in range(b):
        canvas = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=images.dtype)
        canvas[:, pad : pad + h, pad : pad + w] = images[i]
        crop = canvas[:, int(dy[i]) : int(dy[i]) + h, int(dx[i]) : int(dx[i]) + w]
        out[i] = torch.flip(crop, dims=[2]) if bool(flip[i]) else crop
    return out


def random_batch(b: int = 16, c: int = 3, h: int = 8, w: int = 10) -> torch.Tensor:
    return torch.randint(1, 256, (b, c, h, w), generator=torch.Generator().manual_seed(0)).to(torch.uint8)


def test_crop_flip_matches_naive_reference() -> None:
    images = random_batch()
    dy, dx, flip = sample_crop_flip(len(images), 4, torch.Generator().manual_seed(1))
    assert bool(flip.any()) and bool((~flip).any())
    assert torch.equal(crop_flip(images, 4, dy, dx, flip), naive_crop_flip(images, 4, dy, dx, flip))


def test_every_offset_matches_reference() -> None:
    images = random_batch(b=2)
    for oy in range(9):
        for ox in range(9):
            for f in (False, True):
                dy, dx, flip = torch.full((2,), oy), torch.full((2,), ox), torch.full((2,), f)
                assert torch.equal(crop_flip(images, 4, dy, dx, flip), naive_crop_flip(images, 4, dy, dx, flip))


def test_random_crop_flip_draws_from_generator_only() -> None:
    images = random_batch()
    out = random_crop_flip(images, 4, torch.Generator().manual_seed(5))
    dy, dx, flip = sample_crop_flip(len(images), 4, torch.Generator().manual_seed(5))
    assert out.dtype == torch.uint8 and out.shape == images.shape
    assert torch.equal(out, naive_crop_flip(images, 4, dy, dx, flip))
    assert torch.equal(out, random_crop_flip(images, 4, torch.Generator().manual_seed(5)))


def test_centre_crop_without_flip_is_identity() -> None:
    images = random_batch()
    centre = torch.full((len(images),), 4)
    assert torch.equal(crop_flip(images, 4, centre, centre, torch.zeros(len(images), dtype=torch.bool)), images)
