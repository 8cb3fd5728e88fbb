"""elm.jpeg_gap: the same model on lossless and JPEG versions of the same test images."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from elm.checkpoint import checkpoint_name, save_checkpoint
from elm.config import ConfigError, ExperimentConfig, from_dict
from elm.data.base import TensorSplit
from elm.jpeg_gap import gap_row, load_pairs, main
from elm.train import build_experiment
from tests.elm.test_data_cifar import write_fake_cifar10


def reference_balanced(pred: torch.Tensor, y: torch.Tensor, classes: list[int]) -> float:
    accs = []
    for c in classes:
        rows = [i for i in range(len(y)) if int(y[i]) == c]
        accs.append(sum(int(pred[i]) == c for i in rows) / len(rows))
    return 100.0 * sum(accs) / len(accs)


def test_gap_row_matches_a_loop_over_images() -> None:
    g = torch.Generator().manual_seed(0)
    n, c = 300, 4
    y = torch.arange(n) % c
    lossless = torch.randn(n, c, generator=g) + 1.5 * torch.nn.functional.one_hot(y, c)
    jpeg = lossless + 0.8 * torch.randn(n, c, generator=g)
    counts = torch.tensor([500, 120, 40, 10])  # Many, Many, Medium, Few with the default 100 / 20 thresholds
    row = gap_row(lossless, jpeg, y, counts)

    prior = counts.double() / counts.sum()
    for name, logits in (("lossless", lossless), ("jpeg", jpeg)):
        pred = logits.argmax(1)
        assert row[f"balanced_acc_{name}"] == pytest.approx(reference_balanced(pred, y, list(range(c))))
        assert row[f"acc_many_{name}"] == pytest.approx(reference_balanced(pred, y, [0, 1]))
        assert row[f"acc_medium_{name}"] == pytest.approx(reference_balanced(pred, y, [2]))
        adjusted = (logits.double() - torch.log(prior)).argmax(1)
        expected = reference_balanced(adjusted, y, list(range(c)))
        assert row[f"posthoc_tau1_balanced_acc_{name}"] == pytest.approx(expected)
    assert row["balanced_acc_gap"] == pytest.approx(row["balanced_acc_lossless"] - row["balanced_acc_jpeg"])
    b = sum(int(lossless[i].argmax()) == int(y[i]) != int(jpeg[i].argmax()) for i in range(n))
    cc = sum(int(jpeg[i].argmax()) == int(y[i]) != int(lossless[i].argmax()) for i in range(n))
    assert (row["only_lossless_right"], row["only_jpeg_right"]) == (b, cc) and b + cc > 0
    assert row["mcnemar_z"] == pytest.approx((b - cc) / math.sqrt(b + cc))
    same = sum(int(lossless[i].argmax()) == int(jpeg[i].argmax()) for i in range(n))
    assert row["agree"] == pytest.approx(100.0 * same / n)


def _npz(path: Path, x_hwc: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Path:
    np.savez(path, x_test=x_hwc, y_test=y, test_row_in_cifar10_test_npz=rows)
    return path


def test_pairs_are_the_staged_rows_the_file_names_and_labels_must_agree(tmp_path: Path) -> None:
    test = TensorSplit(
        images=torch.arange(6 * 3 * 2 * 2, dtype=torch.uint8).view(6, 3, 2, 2), labels=torch.tensor([0, 0, 1, 1, 2, 2])
    )
    x = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    x[1, 0, 1, 2] = 7  # row 1, pixel (0, 1), channel 2
    pairs = load_pairs(_npz(tmp_path / "ok.npz", x, np.array([2, 0]), np.array([4, 1])), test)
    assert torch.equal(pairs.jpeg, test.images[[4, 1]]) and pairs.labels.tolist() == [2, 0]
    assert pairs.lossless.shape == (2, 3, 2, 2) and int(pairs.lossless[1, 2, 0, 1]) == 7
    with pytest.raises(ConfigError, match="do not match"):
        load_pairs(_npz(tmp_path / "bad.npz", x, np.array([1, 0]), np.array([4, 1])), test)
    with pytest.raises(ConfigError, match="not found"):
        load_pairs(tmp_path / "absent.npz", test)


def _cifar_run(tmp_path: Path, epoch: int = 1) -> tuple[Path, Path, ExperimentConfig]:
    """A fake CIFAR-10 root, a run folder with one checkpoint (at ``epoch``) of a tiny model on it, and its config."""
    write_fake_cifar10(tmp_path, num_classes=10, per_class=20, test_per_class=5)
    cfg = from_dict(
        {
            "name": "t",
            "seed": 0,
            "data": {"name": "cifar10_lt", "root": str(tmp_path), "imbalance_ratio": 4},
            "model": {"name": "tiny_mlp"},
            "loss": {"name": "cross_entropy"},
            "train": {"bf16": False, "channels_last": False},
        }
    )
    run = tmp_path / "run"
    save_checkpoint(
        run / "checkpoints" / checkpoint_name(epoch),
        {"model": build_experiment(cfg).model.state_dict(), "epoch": epoch, "config": cfg.to_dict()},
    )
    return tmp_path, run, cfg


def test_cli_on_a_checkpoint_gives_no_gap_when_both_versions_are_the_same_pixels(tmp_path: Path) -> None:
    _, run, cfg = _cifar_run(tmp_path, epoch=3)
    exp = build_experiment(cfg)
    rows = np.array([7, 0, 23, 41, 12])
    staged = exp.data.test
    x = staged.images[torch.from_numpy(rows)].permute(0, 2, 3, 1).numpy()
    npz = _npz(tmp_path / "lossless.npz", x, staged.labels[torch.from_numpy(rows)].numpy(), rows)
    out = tmp_path / "gap" / "gap.csv"
    assert main(["--run", f"m={run}", "--data-root", str(tmp_path), "--lossless", str(npz), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table["model"].tolist() == ["m"] and int(table["epoch"][0]) == 3 and int(table["images"][0]) == 5
    assert table["balanced_acc_gap"][0] == 0 and table["agree"][0] == 100 and table["only_jpeg_right"][0] == 0
    assert (out.parent / "gap.md").read_text().startswith("| model | epoch | images |")
    assert main(["--run", f"m={tmp_path / 'nothing'}", "--data-root", str(tmp_path), "--lossless", str(npz)]) == 2


def test_cli_bad_input_is_one_error_line_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, run, _ = _cifar_run(tmp_path)
    (tmp_path / "text.npz").write_text("not an npz")
    empty = _npz(
        tmp_path / "empty.npz", np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    )
    negative = _npz(tmp_path / "neg.npz", np.zeros((1, 32, 32, 3), np.uint8), np.zeros(1, np.int64), np.array([-1]))
    smoke = tmp_path / "smoke"
    smoke_cfg = from_dict(
        {
            "name": "s",
            "seed": 0,
            "data": {"name": "synthetic_lt", "num_classes": 3, "image_size": 8, "n_max": 8, "imbalance_ratio": 2},
            "model": {"name": "tiny_mlp"},
            "loss": {"name": "cross_entropy"},
        }
    )
    save_checkpoint(
        smoke / "checkpoints" / checkpoint_name(1), {"model": {}, "epoch": 1, "config": smoke_cfg.to_dict()}
    )
    cases = [  # (arguments, exit code, words of the message)
        (["--run", f"m={run}", "--data-root", str(tmp_path / "absent"), "--lossless", str(empty)], 1, "not found"),
        (["--run", f"m={run}", "--data-root", str(root), "--lossless", str(tmp_path / "text.npz")], 2, "npz"),
        (["--run", f"m={run}", "--data-root", str(root), "--lossless", str(empty)], 2, "no images"),
        (["--run", f"m={run}", "--data-root", str(root), "--lossless", str(negative)], 2, "do not match"),
        (["--run", f"m={smoke}", "--data-root", str(root), "--lossless", str(empty)], 2, "CIFAR-10"),
    ]
    for argv, code, words in cases:
        assert main(argv) == code, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and words in err, (argv, err)


def test_a_lossless_file_without_its_keys_names_them(tmp_path: Path) -> None:
    np.savez(tmp_path / "partial.npz", x_test=np.zeros((1, 2, 2, 3), np.uint8))
    test = TensorSplit(images=torch.zeros(2, 3, 2, 2, dtype=torch.uint8), labels=torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match=r"lacks \['test_row_in_cifar10_test_npz', 'y_test'\]"):
        load_pairs(tmp_path / "partial.npz", test)
