"""CIFAR-10/100-LT factories on tiny fake copies written here in the official python-pickle layout."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch

from elm.config import ConfigError
from elm.data import ChecksumMismatchWarning, DatasetCorruptError, DatasetNotFoundError, load_data
from elm.data import cifar as cifar_module
from elm.data import checksum as checksum_module
from elm.data.longtail import longtail_counts

REAL_CIFAR_ROOT = Path("/work/shared/data")


def fake_pixels(labels: np.ndarray, offset: int) -> np.ndarray:
    """(N, 3072) uint8 channel-major rows; R plane pixel 0/1 encode the global id, G plane = label, B = 200."""
    n = len(labels)
    ids = np.arange(offset, offset + n)
    rows = np.zeros((n, 3, 32, 32), dtype=np.uint8)
    rows[:, 0, 0, 0], rows[:, 0, 0, 1] = ids // 256, ids % 256
    rows[:, 1] = labels[:, None, None]
    rows[:, 2] = 200
    return rows.reshape(n, 3072)


def pixel_ids(images: torch.Tensor) -> list[int]:
    return (images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()).tolist()


def dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_fake_cifar10(root: Path, num_classes: int = 4, per_class: int = 25, test_per_class: int = 5) -> np.ndarray:
    """Write ``cifar-10-batches-py`` with 5 train batches; returns the concatenated train labels."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(num_classes), per_class))
    for b, chunk in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        y = labels[chunk]
        dump(folder / f"data_batch_{b}", {b"data": fake_pixels(y, int(chunk[0])), b"labels": y.tolist()})
    test_y = np.repeat(np.arange(num_classes), test_per_class)
    dump(folder / "test_batch", {b"data": fake_pixels(test_y, 0), b"labels": test_y.tolist()})
    dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(num_classes)]})
    return labels


def write_fake_cifar100(root: Path, num_classes: int = 20, per_class: int = 30, test_per_class: int = 4) -> np.ndarray:
    """Write ``cifar-100-python`` (train/test/meta with fine and coarse labels); returns the train labels."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(num_classes), per_class))
    dump(
        folder / "train",
        {b"data": fake_pixels(labels, 0), b"fine_labels": labels.tolist(), b"coarse_labels": (labels // 5).tolist()},
    )
    test_y = np.repeat(np.arange(num_classes), test_per_class)
    dump(
        folder / "test",
        {b"data": fake_pixels(test_y, 0), b"fine_labels": test_y.tolist(), b"coarse_labels": (test_y // 5).tolist()},
    )
    dump(
        folder / "meta",
        {
            b"fine_label_names": [f"f{i}".encode() for i in range(num_classes)],
            b"coarse_label_names": [f"k{i}".encode() for i in range(num_classes // 5)],
        },
    )
    return labels


def reference_selection(labels: np.ndarray, counts: list[int], seed: int) -> list[int]:
    """LDAM-DRW's gen_imbalanced_data with the global RNG (restored afterwards)."""
    state = np.random.get_state()
    np.random.seed(seed)
    kept: list[int] = []
    for c, n in zip(np.unique(labels), counts):
        idx = np.where(labels == c)[0]
        np.random.shuffle(idx)
        kept += idx[:n].tolist()
    np.random.set_state(state)
    return kept


def test_cifar100_lt_on_fake_files(tmp_path: Path) -> None:
    labels = write_fake_cifar100(tmp_path)
    with pytest.warns(ChecksumMismatchWarning, match="differ from the official release") as record:
        data = load_data("cifar100_lt", {"root": str(tmp_path), "imbalance_ratio": 10.0, "subsample_seed": 3})
    assert len([w for w in record if issubclass(w.category, ChecksumMismatchWarning)]) == 1
    counts = longtail_counts(30, 20, 10.0)
    assert data.num_classes == 20
    assert data.class_counts.dtype == torch.int64 and data.class_counts.tolist() == counts
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape == (sum(counts), 3, 32, 32)
    assert pixel_ids(data.train.images) == reference_selection(labels, counts, 3)
    assert torch.equal(data.train.images[:, 1, 5, 5].long(), data.train.labels)  # channel-major decode
    assert bool((data.train.images[:, 2] == 200).all())
    assert len(data.test) == 80 and data.val is None
    assert data.mean == (0.5071, 0.4865, 0.4409) and data.image_size == 32


def test_cifar10_lt_val_split_is_balanced_and_disjoint(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path)
    with pytest.warns(ChecksumMismatchWarning):
        data = load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 5.0, "val_per_class": 4})
    assert data.num_classes == 4 and data.val is not None
    assert torch.bincount(data.val.labels).tolist() == [4, 4, 4, 4]
    assert not set(pixel_ids(data.train.images)) & set(pixel_ids(data.val.images))
    assert data.class_counts.tolist() == longtail_counts(21, 4, 5.0)
    assert torch.equal(data.val.images[:, 1, 0, 0].long(), data.val.labels)


def test_cifar10_lt_without_val_selects_ldam_images(tmp_path: Path) -> None:
    labels = write_fake_cifar10(tmp_path)
    with pytest.warns(ChecksumMismatchWarning):
        data = load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 10.0, "profile": "step"})
    counts = longtail_counts(25, 4, 10.0, "step")
    assert counts == [25, 25, 2, 2]
    assert pixel_ids(data.train.images) == reference_selection(labels, counts, 0)
    assert data.mean == (0.4914, 0.4822, 0.4465) and data.std == (0.2023, 0.1994, 0.2010)


def test_per_class_caps_keep_first_in_selection_order(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path)
    with pytest.warns(ChecksumMismatchWarning):
        full = load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 2.0})
        capped = load_data(
            "cifar10_lt",
            {"root": str(tmp_path), "imbalance_ratio": 2.0, "max_train_per_class": 15, "max_test_per_class": 2},
        )
    expected = [i for c in range(4) for i in pixel_ids(full.train.images[full.train.labels == c])[:15]]
    assert pixel_ids(capped.train.images) == expected
    assert capped.class_counts.tolist() == [min(n, 15) for n in full.class_counts.tolist()]
    assert torch.bincount(capped.test.labels).tolist() == [2, 2, 2, 2]


def test_config_is_checked_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="imbalance_ratio"):
        load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 0.5})
    with pytest.raises(ValueError, match="profile"):
        load_data("cifar10_lt", {"root": str(tmp_path), "profile": "linear"})


def test_official_checksums_give_no_warning_and_hash_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_fake_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    layout = cifar_module.LAYOUTS["cifar10"]
    official = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in layout.file_md5}
    monkeypatch.setitem(cifar_module.LAYOUTS, "cifar10", dataclasses.replace(layout, file_md5=official))
    calls = []
    real_md5 = checksum_module.md5_of_file
    monkeypatch.setattr(checksum_module, "md5_of_file", lambda p: calls.append(p) or real_md5(p))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 10.0})
        assert len(calls) == len(official)
        assert (folder / checksum_module.CACHE_FILE_NAME).is_file()
        checksum_module._PROCESS_CACHE.clear()  # a new process: the json next to the data answers
        load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 10.0})
    assert len(calls) == len(official)


def test_one_warning_per_load(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 10.0})
        load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 10.0})
    assert [w.category for w in record] == [ChecksumMismatchWarning] * 2


def test_missing_root_without_download_explains_where_to_put_files(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as info:
        load_data("cifar100_lt", {"root": str(root)})
    message = str(info.value)
    assert str(root / "cifar-100-python" / "train") in message
    assert "download=False" in message and "cifar-100-python.tar.gz" in message
    assert isinstance(info.value, FileNotFoundError)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar-10-python.tar.gz"


def test_failed_download_is_fast_and_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = cifar_module.LAYOUTS["cifar10"]
    monkeypatch.setitem(cifar_module.LAYOUTS, "cifar10", dataclasses.replace(layout, url=closed_port_url()))
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match="Download failed") as info:
        load_data("cifar10_lt", {"root": str(tmp_path), "download": True})
    assert time.monotonic() - start < 5.0
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in str(info.value)


@pytest.fixture
def served_tarball(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fake cifar-10 tarball served over http on localhost; yields (url, md5)."""
    source = tmp_path / "source"
    write_fake_cifar10(source)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    payload = buffer.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz", hashlib.md5(payload).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


def test_download_verifies_md5_and_extracts(
    tmp_path: Path, served_tarball: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, md5 = served_tarball
    layout = cifar_module.LAYOUTS["cifar10"]
    root = tmp_path / "bad"
    monkeypatch.setitem(cifar_module.LAYOUTS, "cifar10", dataclasses.replace(layout, url=url, tarball_md5="0" * 32))
    with pytest.raises(DatasetNotFoundError, match="md5"):
        load_data("cifar10_lt", {"root": str(root), "download": True})
    assert not list(root.glob("*.tar.gz*"))
    root = tmp_path / "good"
    monkeypatch.setitem(cifar_module.LAYOUTS, "cifar10", dataclasses.replace(layout, url=url, tarball_md5=md5))
    with pytest.warns(ChecksumMismatchWarning):
        data = load_data("cifar10_lt", {"root": str(root), "download": True, "imbalance_ratio": 1.0})
    assert len(data.train) == 100 and not list(root.glob("*.tar.gz"))


@pytest.mark.skipif(not (REAL_CIFAR_ROOT / "cifar-10-batches-py").is_dir(), reason="real CIFAR-10 not staged")
def test_real_cifar10_lt() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChecksumMismatchWarning)
        data = load_data("cifar10_lt", {"root": str(REAL_CIFAR_ROOT)})
    assert len(data.train) == 12406
    assert data.class_counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert len(data.test) == 10000 and data.num_classes == 10


def truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGES = {
    "truncated to half": lambda p: truncate(p, 0.5),
    "truncated to 10 bytes": lambda p: p.write_bytes(p.read_bytes()[:10]),
    "last byte missing": lambda p: p.write_bytes(p.read_bytes()[:-1]),
    "empty": lambda p: p.write_bytes(b""),
    "random bytes": lambda p: p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()),
    "an html error page": lambda p: p.write_bytes(b"<html><body>404 Not Found</body></html>\n"),
    "a pickled list": lambda p: dump_any(p, [1, 2, 3]),
}


def dump_any(path: Path, obj: object) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
@pytest.mark.parametrize(
    "variant, name",
    [
        ("cifar10", "data_batch_3"),
        ("cifar10", "test_batch"),
        ("cifar10", "batches.meta"),
        ("cifar100", "train"),
        ("cifar100", "test"),
        ("cifar100", "meta"),
    ],
)
def test_a_corrupt_or_truncated_file_raises_one_error_naming_it(
    tmp_path: Path, variant: str, name: str, damage: str
) -> None:
    (write_fake_cifar10 if variant == "cifar10" else write_fake_cifar100)(tmp_path)
    path = tmp_path / cifar_module.LAYOUTS[variant].folder / name
    DAMAGES[damage](path)
    with pytest.raises(DatasetCorruptError) as info:
        load_data(f"{variant}_lt", {"root": str(tmp_path), "imbalance_ratio": 2.0})
    message = str(info.value)
    assert str(path) in message and "corrupt or truncated" in message and "download" in message
    assert "\n" not in message and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "entry, needle",
    [
        ({b"labels": [0]}, "lacks 'data' or 'labels'"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "'data' is (2, 100)"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "with (1,) labels"),
        ({b"data": "pixels", b"labels": [0]}, "do not convert"),
    ],
)
def test_a_batch_of_the_wrong_shape_is_reported_as_corrupt(tmp_path: Path, entry: dict, needle: str) -> None:
    write_fake_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    dump_any(path, entry)
    with pytest.raises(DatasetCorruptError, match="corrupt or truncated") as info:
        load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 10.0})
    assert str(path) in str(info.value) and needle in str(info.value)


def test_longtail_counts_that_empty_a_class_fail_at_load_naming_the_key(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path)  # 4 classes x 25: the rarest class gets int(25 / ratio) images
    with pytest.raises(ConfigError, match=r"data\.imbalance_ratio=100 leaves class 3 with 0 training images"):
        load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 100.0})
    assert load_data("cifar10_lt", {"root": str(tmp_path), "imbalance_ratio": 25.0}).class_counts.min() >= 1
    with pytest.raises(ConfigError, match=r"data\.val_per_class=25 takes all 25 images of class 0"):
        load_data("cifar10_lt", {"root": str(tmp_path), "val_per_class": 25, "imbalance_ratio": 1.0})
    with pytest.raises(ConfigError, match=r"n_max=5 after data\.val_per_class=20 held out"):  # 5 / 10 < 1
        load_data("cifar10_lt", {"root": str(tmp_path), "val_per_class": 20, "imbalance_ratio": 10.0})
