"""platform.storage: the sweep's storage folder, paths on pyarrow file systems, checkpoints mirrored to a store."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import torch

from elm.checkpoint import STATE_FILE
from platform.storage import (
    StoragePath,
    complete_checkpoints,
    is_default_storage,
    pull_latest_checkpoint,
    push_checkpoint,
    resolve_storage,
    sweep_storage,
)


def test_default_storage_is_the_experiment_folder_itself(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    folder = sweep_storage(None, out)
    assert folder.local() == out and is_default_storage(folder, out)
    # what a sweep started before --storage existed keeps: <out>/ray and <out>/train
    assert (folder / "ray").local() == out / "ray" and (folder / "train").local() == out / "train"


def test_a_storage_root_holds_the_sweep_under_the_out_folder_name(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "exp1"
    folder = sweep_storage(str(tmp_path / "shared"), out)
    assert folder.local() == tmp_path / "shared" / "exp1" and not is_default_storage(folder, out)
    assert sweep_storage(f"file://{tmp_path / 'shared'}", out) == folder


def test_storage_path_reads_writes_and_lists_like_a_path(tmp_path: Path) -> None:
    root = resolve_storage(str(tmp_path))
    f = root / "a" / "b" / "note.txt"
    assert not f.exists() and not f.is_file()
    f.write_text("hello\n")
    assert f.is_file() and f.read_text() == "hello\n" and (tmp_path / "a" / "b" / "note.txt").read_text() == "hello\n"
    assert f.parent.is_dir() and f.name == "note.txt" and f.parent.parent == root / "a"
    (root / "a" / "c").mkdir()
    assert (root / "a").subdirs() == ["b", "c"] and (root / "nothing").subdirs() == []
    f.parent.delete()
    assert not f.parent.exists()
    assert pickle.loads(pickle.dumps(f)) == f  # travels to Ray workers


def test_ray_storage_keeps_a_local_path_plain_and_names_the_file_system_otherwise(tmp_path: Path) -> None:
    assert resolve_storage(str(tmp_path)).ray_storage() == {"storage_path": str(tmp_path)}
    mem = StoragePath(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "bucket/x", "mem")
    assert mem.ray_storage()["storage_filesystem"] is mem.fs and mem.local() is None and str(mem) == "mem://bucket/x"


def _checkpoint(folder: Path, epoch: int) -> Path:
    ckpt = folder / f"epoch_{epoch:04d}"
    ckpt.mkdir(parents=True)
    torch.save({"epoch": epoch}, ckpt / STATE_FILE)
    return ckpt


def remote(tmp_path: Path) -> StoragePath:
    """A store that is not this machine's file system to the code under test (no ``local()``)."""
    (tmp_path / "store").mkdir(parents=True)
    return StoragePath(pafs.SubTreeFileSystem(str(tmp_path / "store"), pafs.LocalFileSystem()), "run", "mem")


def test_checkpoints_pushed_to_a_store_keep_the_newest_and_the_newest_is_pulled_back(tmp_path: Path) -> None:
    run = remote(tmp_path)
    for epoch in (1, 2, 3):
        push_checkpoint(_checkpoint(tmp_path / "local", epoch), run, keep=2)
    assert complete_checkpoints(run) == ["epoch_0002", "epoch_0003"]
    got = pull_latest_checkpoint(run, tmp_path / "again")
    assert got == tmp_path / "again" / "checkpoints" / "epoch_0003"
    assert torch.load(got / STATE_FILE)["epoch"] == 3


def test_a_checkpoint_whose_state_file_never_arrived_is_not_resumed_from(tmp_path: Path) -> None:
    run = remote(tmp_path)
    push_checkpoint(_checkpoint(tmp_path / "local", 1), run, keep=2)
    (run / "checkpoints" / "epoch_0002" / "other.txt").write_text("cut short")  # the upload died before state.pt
    assert complete_checkpoints(run) == ["epoch_0001"]
    assert pull_latest_checkpoint(remote(tmp_path / "empty"), tmp_path / "x") is None


def test_an_unknown_scheme_is_one_config_error_line() -> None:
    from elm.config import ConfigError

    with pytest.raises(ConfigError, match=r"--storage nosuch://bucket/x: cannot reach it"):
        resolve_storage("nosuch://bucket/x")
