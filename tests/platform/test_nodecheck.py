"""platform.nodecheck: what each node lacks (storage it cannot read, dataset files), named per node."""

from __future__ import annotations

from pathlib import Path

from elm.data.cifar import LAYOUTS
from platform.nodecheck import NodeReport, missing_data_files, node_problems
from platform.storage import resolve_storage


def test_cifar_files_missing_on_a_node_are_listed(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        (folder / name).write_bytes(b"x")
    missing = missing_data_files("cifar10_lt", {"root": str(tmp_path)})
    assert missing == [str(folder / n) for n in ("data_batch_3", "data_batch_4", "data_batch_5", "batches.meta")]
    assert len(LAYOUTS["cifar10"].all_files) == 7


def test_a_missing_root_folder_is_named_and_in_memory_data_needs_no_file(tmp_path: Path) -> None:
    assert missing_data_files("cifar100_lt", {"root": str(tmp_path / "nope")}) == [f"{tmp_path / 'nope'}/"]
    assert missing_data_files("synthetic_lt", {"num_classes": 5}) == []


def test_image_list_datasets_check_every_listed_image(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"x")
    (tmp_path / "ImageNet_LT_train.txt").write_text("a.jpg 0\nb.jpg 1\n")
    missing = missing_data_files("imagenet_lt", {"root": str(tmp_path)})
    assert missing == [str(tmp_path / "ImageNet_LT_test.txt"), str(tmp_path / "b.jpg")]


def test_each_node_is_named_with_what_it_lacks(tmp_path: Path) -> None:
    storage = resolve_storage(str(tmp_path))
    reports = [
        NodeReport("10.0.0.1 (head)", None, ()),
        NodeReport("10.0.0.2 (w1)", "the driver's marker file is not there", tuple(f"/d/f{i}" for i in range(7))),
    ]
    problems = node_problems(reports, storage, "cifar10_lt")
    assert len(problems) == 2
    assert problems[0].startswith(f"node 10.0.0.2 (w1) cannot read the sweep's storage {tmp_path}")
    assert "cluster of 2 nodes pass --storage" in problems[0]
    assert "lacks 7 file(s) or folder(s) of dataset 'cifar10_lt'" in problems[1] and "and 2 more" in problems[1]
    assert node_problems(reports[:1], storage, "cifar10_lt") == []


def test_a_node_that_cannot_read_a_remote_store_is_told_about_credentials() -> None:
    import pyarrow.fs as pafs

    from platform.storage import StoragePath

    store = StoragePath(pafs.SubTreeFileSystem("/", pafs.LocalFileSystem()), "bucket/sweeps/x", "s3")
    [problem] = node_problems([NodeReport("10.0.0.3 (w2, id 1234abcd)", "AWS Error ACCESS_DENIED", ())], store, "d")
    assert problem.startswith(
        "node 10.0.0.3 (w2, id 1234abcd) cannot read the sweep's storage s3://bucket/sweeps/x "
        "(AWS Error ACCESS_DENIED); give that node the store's credentials"
    )


def test_a_ray_client_driver_checks_a_local_storage_even_on_one_node(tmp_path: Path) -> None:
    """Through ray://, the driver's disk is not the node's: a local --out must be proven shared there too."""
    import pyarrow.fs as pafs

    from platform.nodecheck import storage_needs_marker
    from platform.storage import StoragePath

    local = resolve_storage(str(tmp_path))
    remote = StoragePath(pafs.SubTreeFileSystem("/", pafs.LocalFileSystem()), "bucket/sweeps/x", "s3")
    assert not storage_needs_marker(1, local, client=False)  # the driver runs on the one node
    assert storage_needs_marker(1, local, client=True)
    assert storage_needs_marker(2, local, client=False)
    assert storage_needs_marker(1, remote, client=False)
