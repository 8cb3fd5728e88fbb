"""The on-device data path (`train.data_on_device`), run here with device=cpu: bit-identical to the CPU path.

Three references: the batches' SHA-256 computed with the loader as it was before the on-device path existed
(commit 48266d7), a per-image reference written here from the same random draws, and the plain CPU path.
"""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from elm.config import from_dict, set_keys
from elm.data.augment import sample_crop_flip
from elm.data.base import TensorSplit, splits_on
from elm.data.loaders import _AUGMENT_STREAM, derive_seed, epoch_order, iterate_batches, shard, view_seed
from elm.train import EpochReport, build_experiment, data_on_device, fit
from tests.conftest import tiny_raw

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
KW = dict(batch_size=16, mean=MEAN, std=STD, image_size=8, seed=7, epoch=3, rank=1, world_size=2)
# sha256 over (train, then eval) batches' bytes, from the loader of commit 48266d7 (before this path existed).
GOLDEN = {
    1: "1e420d5990ce3c2db30a7b530a892f007b2f5c999e9e61e17332533c78ea118a",
    2: "09c9bf8176e1404ecb60cf12a77115705c65a4d310716a82d1b5346066a90fba",
}


def split37() -> TensorSplit:
    g = torch.Generator().manual_seed(123)
    return TensorSplit(torch.randint(0, 256, (37, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(37) % 5)


def digest(split: TensorSplit, views: int) -> str:
    h = hashlib.sha256()
    for train in (True, False):
        for x, y in iterate_batches(split, train=train, views=views, **KW):
            h.update(x.cpu().numpy().tobytes())
            h.update(y.cpu().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("views", [1, 2])
def test_on_device_batches_equal_the_old_cpu_batches_bit_for_bit(views: int) -> None:
    split = split37()
    moved = split.to(torch.device("cpu"))  # the on-device path with device=cpu
    assert digest(split, views) == GOLDEN[views]
    assert digest(moved, views) == GOLDEN[views] and moved is split  # already there: not copied


def reference_batches(split: TensorSplit, views: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per image: pad 4 with zeros, crop 8x8 at (dy, dx), mirror if flipped, then (x/255 - mean)/std."""
    order = shard(epoch_order(len(split), train=True, seed=7, epoch=3), 1, 2)
    gens = [torch.Generator().manual_seed(view_seed(derive_seed(_AUGMENT_STREAM, 7, 3, 1), v)) for v in range(views)]
    m, s = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    out = []
    for b in range(0, len(order), 16):
        idx = order[b : b + 16]
        rows = []
        for g in gens:
            dy, dx, flip = sample_crop_flip(len(idx), 4, g)
            for i, j in enumerate(idx.tolist()):
                img = F.pad(split.images[j], (4, 4, 4, 4))[:, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
                img = img.flip(-1) if flip[i] else img
                rows.append((img.float() / 255.0 - m) / s)
        out.append((torch.stack(rows), split.labels[idx].repeat(views)))
    return out


@pytest.mark.parametrize("views", [1, 2])
def test_on_device_batches_equal_a_per_image_reference(views: int) -> None:
    split = split37().to(torch.device("cpu"))
    got = list(iterate_batches(split, train=True, views=views, **KW))
    want = reference_batches(split37(), views)
    assert len(got) == len(want)
    for (x, y), (rx, ry) in zip(got, want):
        assert torch.equal(x, rx) and torch.equal(y, ry)


def test_splits_on_moves_tensor_splits_and_keeps_counts_on_the_cpu() -> None:
    data = build_experiment(from_dict(tiny_raw())).data
    moved = splits_on(data, torch.device("meta"))
    assert moved.train.images.device.type == "meta" and moved.test.labels.device.type == "meta"
    assert moved.class_counts.device.type == "cpu" and data.train.images.device.type == "cpu"


@pytest.mark.parametrize(
    "setting, device, expected",
    [("auto", "cpu", False), ("auto", "cuda", True), (True, "cpu", True), (False, "cuda", False)],
)
def test_data_on_device_setting(setting: object, device: str, expected: bool) -> None:
    cfg = from_dict(set_keys(tiny_raw(), {"train.data_on_device": setting}))
    assert data_on_device(cfg, torch.device(device)) is expected


def test_fit_with_data_on_device_trains_exactly_as_without(one_torch_thread: None) -> None:
    runs = {}
    for setting in (False, True):
        cfg = from_dict(set_keys(tiny_raw(), {"optim.epochs": 1, "train.data_on_device": setting}))
        reports: list[EpochReport] = []
        fit(cfg, reports.append)
        runs[setting] = reports[-1].metrics
    keep = [k for k in runs[False] if not k.startswith(("train/epoch_seconds", "train/images_per_sec"))]
    assert {k: runs[True][k] for k in keep} == {k: runs[False][k] for k in keep}
