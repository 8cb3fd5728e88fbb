"""File-backed splits: worker processes, persistent workers and options change how batches are made, never which."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from elm.config import ConfigError, from_dict, set_keys
from elm.data import file_loader
from elm.data.file_options import FileLoaderOptions
from elm.data.loaders import iterate_batches
from tests.conftest import tiny_raw
from tests.elm.test_data_loaders import png_split

KW = dict(batch_size=4, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), image_size=16, seed=1)


def epochs(split, options: FileLoaderOptions, views: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:  # type: ignore[no-untyped-def]
    out = []
    for epoch in (0, 1):
        out += list(iterate_batches(split, train=True, epoch=epoch, views=views, loader=options, **KW))
    out += list(iterate_batches(split, train=False, epoch=0, loader=options, **KW))
    return out


def test_persistent_workers_give_the_same_batches_as_the_calling_process(tmp_path: Path) -> None:
    split = png_split(tmp_path, n=7)
    plain = epochs(split, FileLoaderOptions())
    pooled = epochs(split, FileLoaderOptions(workers=2, persistent_workers=True, prefetch_factor=1))
    assert len(plain) == len(pooled)
    for (x, y), (px, py) in zip(plain, pooled):
        assert torch.equal(x, px) and torch.equal(y, py)


def test_a_persistent_loader_serves_every_epoch_and_goes_with_its_split(tmp_path: Path) -> None:
    split = png_split(tmp_path, n=5)
    options = FileLoaderOptions(workers=1, persistent_workers=True)
    first = file_loader._loader(split, True, 16, 1.0, 4, False, options)
    assert file_loader._loader(split, True, 16, 1.0, 4, False, options) is first
    assert file_loader._loader(split, True, 16, 1.0, 4, False, FileLoaderOptions()) is not first  # not persistent
    del first
    assert len(file_loader._LOADERS) == 1
    del split
    assert len(file_loader._LOADERS) == 0


def test_epoch_keys_batches_positions_in_order() -> None:
    keys = file_loader.EpochKeys(batch_size=2, drop_last=False)
    keys.set_epoch([5, 3, 9], (11,))
    assert list(keys) == [[(5, 0, (11,)), (3, 1, (11,))], [(9, 2, (11,))]] and len(keys) == 2
    keys.drop_last = True
    assert len(keys) == 1 and len(list(keys)) == 1


@pytest.mark.parametrize("options, needle", [({"workers": -1}, "workers"), ({"prefetch_factor": 0}, "prefetch")])
def test_bad_options_are_refused(options: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        FileLoaderOptions(**options)


@pytest.mark.parametrize(
    "key, value", [("train.loader_workers", -1), ("train.prefetch_factor", 0), ("train.pin_memory", "yes")]
)
def test_loader_config_keys_are_validated(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        from_dict(set_keys(tiny_raw(), {key: value}))


def test_evaluation_decodes_file_splits_with_the_configured_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evaluation of ImageNet-LT reads tens of thousands of files: it uses train.loader_workers as training does
    (not persistent: its workers end with the evaluation)."""
    from elm.data.base import LongTailData
    from elm.registry import MODELS
    from elm.train import evaluate

    split = png_split(tmp_path, n=6)
    data = LongTailData(
        train=split,
        val=None,
        test=split,
        num_classes=2,
        class_counts=torch.tensor([3, 3]),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        image_size=16,
    )
    cfg = from_dict(
        set_keys(
            tiny_raw(),
            {"train.loader_workers": 3, "train.prefetch_factor": 4, "train.bf16": False, "train.channels_last": False},
        )
    )
    seen: list[FileLoaderOptions] = []
    real = file_loader.file_batches

    def recording(*args, options: FileLoaderOptions, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(options)
        return real(*args, options=FileLoaderOptions(), **kwargs)  # decode here: the test needs no workers

    monkeypatch.setattr(file_loader, "file_batches", recording)
    model = MODELS.build("tiny_mlp", {}, num_classes=2, in_channels=3, image_size=16)
    evaluate(model, cfg, data, "test", torch.device("cpu"))
    assert seen and all(o.workers == 3 and o.prefetch_factor == 4 and not o.persistent_workers for o in seen)
