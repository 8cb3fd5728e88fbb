"""iterate_batches: determinism in (seed, epoch), DDP shards, normalisation, file splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from elm.data import iterate_batches, num_batches
from elm.data.base import FileSplit, TensorSplit
from elm.data.loaders import shard

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def id_split(n: int = 37, side: int = 8) -> TensorSplit:
    """Images whose every pixel (channel 0) holds the example id, so crops and flips preserve it."""
    ids = torch.arange(n)
    images = torch.zeros(n, 3, side, side, dtype=torch.uint8)
    images[:, 0] = ids[:, None, None].to(torch.uint8)
    images[:, 1:] = 128
    return TensorSplit(images=images, labels=ids % 5)


def run(split, **kw) -> list[tuple[torch.Tensor, torch.Tensor]]:
    args = dict(batch_size=8, train=True, mean=MEAN, std=STD, image_size=8, seed=0, epoch=0)
    args.update(kw)
    return list(iterate_batches(split, **args))


def ids_of(batches: list[tuple[torch.Tensor, torch.Tensor]]) -> list[int]:
    """Example ids from channel 0: a pad-4 crop of an 8x8 image keeps >= 4x4 original pixels, so the max is the id."""
    out = []
    for x, _ in batches:
        raw = (x[:, 0] * STD[0] + MEAN[0]) * 255.0  # (B, H, W), zeros where padding showed
        out += raw.flatten(1).max(dim=1).values.round().long().tolist()
    return out


def test_same_seed_epoch_same_batches() -> None:
    split = id_split()
    a, b = run(split), run(split)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    c = run(split, epoch=1)
    assert ids_of(a) != ids_of(c)


def test_batches_dtype_shape_and_labels_follow_images() -> None:
    split = id_split()
    batches = run(split)
    assert len(batches) == num_batches(split, 8) == 5
    x, y = batches[0]
    assert x.dtype == torch.float32 and x.shape == (8, 3, 8, 8) and y.dtype == torch.int64
    ids = ids_of(batches)
    assert sorted(ids) == list(range(37))
    assert torch.cat([y for _, y in batches]).tolist() == [i % 5 for i in ids]


def test_eval_is_ordered_unaugmented_and_normalised() -> None:
    split = id_split()
    batches = run(split, train=False)
    x = torch.cat([b[0] for b in batches])
    expected = (split.images.float() / 255.0 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.allclose(x, expected)


@pytest.mark.parametrize("n,world", [(37, 4), (40, 4), (5, 3)])
def test_rank_shards_are_disjoint_and_cover(n: int, world: int) -> None:
    split = id_split(n)
    shards = [ids_of(run(split, rank=r, world_size=world, batch_size=4)) for r in range(world)]
    per_rank = -(-n // world)
    assert all(len(s) == per_rank for s in shards)
    assert sorted(set().union(*map(set, shards))) == list(range(n))
    if n % world == 0:
        assert sum(len(s) for s in shards) == n and len(set().union(*map(set, shards))) == n
    expected = num_batches(split, 4, world)
    assert all(len(run(split, rank=r, world_size=world, batch_size=4)) == expected for r in range(world))


def test_shard_pads_by_wrapping() -> None:
    order = torch.tensor([4, 2, 0, 1, 3])
    assert [shard(order, r, 3).tolist() for r in range(3)] == [[4, 1], [2, 3], [0, 4]]
    with pytest.raises(ValueError, match="rank"):
        shard(order, 3, 3)


def test_drop_last() -> None:
    split = id_split(37)
    assert len(run(split, drop_last=True)) == num_batches(split, 8, drop_last=True) == 4


def test_loader_leaves_global_rng_alone() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    run(id_split())
    assert torch.equal(before, torch.get_rng_state())


def test_wrong_image_size_raises() -> None:
    with pytest.raises(ValueError, match="image_size"):
        run(id_split(), image_size=32)


def png_split(tmp_path: Path, n: int = 6) -> FileSplit:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        rel = f"c{i % 2}/img {i}.png"
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(tmp_path / rel)
        paths.append(rel)
    return FileSplit(root=tmp_path, paths=tuple(paths), labels=torch.arange(n) % 2)


def test_file_split_batches(tmp_path: Path) -> None:
    split = png_split(tmp_path)
    kw = dict(batch_size=4, mean=MEAN, std=STD, image_size=16, seed=1, epoch=2)
    train_a = list(iterate_batches(split, train=True, **kw))
    train_b = list(iterate_batches(split, train=True, **kw))
    assert [x.shape for x, _ in train_a] == [(4, 3, 16, 16), (2, 3, 16, 16)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(train_a, train_b))
    evals = list(iterate_batches(split, train=False, **kw))
    assert torch.cat([y for _, y in evals]).tolist() == split.labels.tolist()
    shards = [list(iterate_batches(split, train=True, rank=r, world_size=2, **kw)) for r in range(2)]
    assert all(len(s) == num_batches(split, 4, 2) for s in shards)
