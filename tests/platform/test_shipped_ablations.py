"""Every shipped ``ablations/*.yaml`` runs through the real CLI at smoke size and leaves what a user reads (slow).

    python -m pytest -m slow tests/platform/test_shipped_ablations.py

Each file runs as ``python -m platform.tune FILE --smoke --out TMP --set data.root=...`` in a subprocess from the
repo root, with its own searcher, scheduler, ``eval_every`` and launcher (``--smoke`` shrinks sizes only; see
``tests/platform/test_smoke.py``). The ``--set`` flags here change data paths only: every dataset is a tiny copy
written by the test in its real layout (CIFAR-10/100 pickles with a few images per class; ImageNet-LT and
iNaturalist split lists with small JPEGs), so a file that cannot run fails here whatever data the machine has.
A ``from_sweep`` variant would point at a smoke run of the sweep it names, made first (no shipped file has one).

Asserted, as a user reads it: exit code 0; ``summary.md`` lists every trial with a status; ``trials.csv`` has a
row per trial; every MLflow child run is FINISHED (none RUNNING); the tuned metric was logged exactly on the
epochs the file's ``eval_every`` evaluates; the launcher is the full file's.

Measured on the 2-core machine (seconds per file, Ray start-up included), with the machine at load average 8-18
from other jobs: cifar10 58, cifar100 55, cifar100_ablation 86, cifar10_elm_val_search 36, cifar10_mlp_ablation 40,
cifar10_mlp_search 29, cifar10_reduced 69, imagenet_lt 70, inaturalist 75, smoke 25, smoke_ablation 55: 600 s in
all. The same test at load average 2-5 (10 files then) took 420 s. User CPU time of pytest and the CLI
processes: about 2 minutes.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from elm.config import ExperimentConfig, load_config
from elm.config_files import read_config
from platform.smoke import smoke
from platform.spec import parse_platform

REPO_ROOT = Path(__file__).resolve().parents[2]
ABLATIONS = sorted((REPO_ROOT / "ablations").glob("*.yaml"))
pytestmark = pytest.mark.slow
TIMEOUT_S = 600
STATUSES = ("finished", "stopped early", "failed")  # summary.md's words for a trial's outcome

# Tiny datasets. CIFAR: a balanced pool of CIFAR_POOL_PER_CLASS training images per class, enough for rho = 100 to
# leave every class an image after the smoke validation holdout (20 per class: 110 -> 1) and the head class more
# than 100 (a Many group: cifar10_pareto.yaml tunes val/acc_many); CIFAR-100 with fewer fine classes. About 2
# batches per epoch.
CIFAR_POOL_PER_CLASS, CIFAR_TEST_PER_CLASS = 130, 10
CIFAR100_CLASSES = 10
FILE_CLASS_COUNTS = (8, 6, 4, 3, 2, 1)  # ImageNet-LT / iNaturalist training images per class, long-tailed
FILE_EVAL_PER_CLASS, JPEG_SIDE = 2, 16


def tune(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platform.tune", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=TIMEOUT_S
    )


# ----------------------------------------------------------------------------------------- tiny datasets


def _dump(path: Path, obj: dict[bytes, Any]) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _pixels(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8)  # (N, 3 * 32 * 32) channel-major rows


def write_cifar10(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(10), CIFAR_POOL_PER_CLASS))
    for b, chunk in enumerate(np.array_split(labels, 5), start=1):
        _dump(folder / f"data_batch_{b}", {b"data": _pixels(len(chunk), rng), b"labels": chunk.tolist()})
    test = np.repeat(np.arange(10), CIFAR_TEST_PER_CLASS)
    _dump(folder / "test_batch", {b"data": _pixels(len(test), rng), b"labels": test.tolist()})
    _dump(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})


def write_cifar100(root: Path) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    labels = rng.permutation(np.repeat(np.arange(CIFAR100_CLASSES), CIFAR_POOL_PER_CLASS))
    test = np.repeat(np.arange(CIFAR100_CLASSES), CIFAR_TEST_PER_CLASS)
    for name, y in (("train", labels), ("test", test)):
        _dump(
            folder / name,
            {b"data": _pixels(len(y), rng), b"fine_labels": y.tolist(), b"coarse_labels": (y // 5).tolist()},
        )
    _dump(
        folder / "meta",
        {
            b"fine_label_names": [f"f{i}".encode() for i in range(CIFAR100_CLASSES)],
            b"coarse_label_names": [f"k{i}".encode() for i in range(CIFAR100_CLASSES // 5)],
        },
    )


def write_file_split(images: Path, lists: Path, split_files: dict[str, tuple[int, ...]]) -> None:
    """Small JPEGs under ``images/<split>/<class>/`` and one ``relative/path label`` list per split file."""
    from PIL import Image

    rng = np.random.default_rng(2)
    lists.mkdir(parents=True)
    for file_name, counts in split_files.items():
        lines = []
        for label, n in enumerate(counts):
            for i in range(n):
                rel = f"{Path(file_name).stem}/{label}/{i}.jpg"
                (images / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (JPEG_SIDE, JPEG_SIDE, 3), dtype=np.uint8)).save(images / rel)
                lines.append(f"{rel} {label}")
        (lists / file_name).write_text("\n".join(lines) + "\n")


def data_args(cfg: ExperimentConfig, root: Path) -> list[str]:
    """Write the tiny dataset ``cfg`` needs under ``root``; the ``--set`` flags that point the run at it."""
    name = cfg.data.name
    evaluation = (FILE_EVAL_PER_CLASS,) * len(FILE_CLASS_COUNTS)
    if name == "cifar10_lt":
        write_cifar10(root)
    elif name == "cifar100_lt":
        write_cifar100(root)
    elif name == "imagenet_lt":
        write_file_split(
            root / "images",
            root / "lists",
            {
                "ImageNet_LT_train.txt": FILE_CLASS_COUNTS,
                "ImageNet_LT_test.txt": evaluation,
                "ImageNet_LT_val.txt": evaluation,
            },
        )
    elif name == "inaturalist2018":
        write_file_split(
            root / "images",
            root / "lists",
            {"iNaturalist18_train.txt": FILE_CLASS_COUNTS, "iNaturalist18_val.txt": evaluation},
        )
    elif name == "synthetic_lt":
        return []  # generated in memory
    else:
        pytest.fail(f"dataset {name!r} is new: write a tiny copy of it in this test")
    if name in ("imagenet_lt", "inaturalist2018"):
        return ["--set", f"data.root={root / 'images'}", "--set", f"data.split_dir={root / 'lists'}"]
    return ["--set", f"data.root={root}"]


def from_sweep_args(path: Path, tmp: Path) -> list[str]:
    """For every ``from_sweep`` variant of ``path``: run the shipped sweep it names at smoke size first, and the
    ``--set`` flag that points the variant at that run (only the sweep's folder changes)."""
    args: list[str] = []
    variants = (read_config(path).get("ablation") or {}).get("variants") or {}
    for variant, overrides in variants.items():
        src = overrides.get("from_sweep") if isinstance(overrides, dict) else None
        if src is None:
            continue
        folder = Path(src["path"] if isinstance(src, dict) else src)
        sweeps = [p for p in ABLATIONS if load_config(p).name == folder.name]
        assert sweeps, f"{path.name}: variant {variant} takes values from {folder}, which no shipped file writes"
        out = tmp / f"sweep-{folder.name}"
        if not out.exists():
            proc = tune(
                str(sweeps[0]),
                "--smoke",
                "--out",
                str(out),
                *data_args(load_config(sweeps[0]), tmp / f"data-{folder.name}"),
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
        value = {**src, "path": str(out)} if isinstance(src, dict) else str(out)
        flow = yaml.safe_dump(value, default_flow_style=True).strip()
        args += ["--set", f"ablation.variants.{variant}.from_sweep={flow}"]
    return args


# ------------------------------------------------------------------------------------------------- the test


def evaluated_epochs(cfg: ExperimentConfig) -> set[int]:
    e, k = cfg.optim.epochs, cfg.train.eval_every
    return {i for i in range(1, e + 1) if i % k == 0 or i == e}


def expected_trials(cfg: ExperimentConfig) -> int:
    spec = parse_platform(cfg)
    if spec.ablation is not None:
        return len(spec.ablation.variants) * len(spec.ablation.seeds)
    return spec.tune.num_samples


@pytest.mark.parametrize("path", ABLATIONS, ids=[p.name for p in ABLATIONS])
def test_shipped_file_runs_at_smoke_size(path: Path, tmp_path: Path) -> None:
    full = load_config(path)
    small = smoke(full)
    out = tmp_path / "out"
    t0 = time.perf_counter()
    proc = tune(
        str(path), "--smoke", "--out", str(out), *data_args(full, tmp_path / "data"), *from_sweep_args(path, tmp_path)
    )
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, f"{path.name} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    print(f"{path.name}: {seconds:.0f} s")

    # MLflow: one child run per trial, all FINISHED; the metric(s) logged exactly on the evaluated epochs
    metrics = parse_platform(small).tune.metrics
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name(small.name)
    assert exp is not None, f"no MLflow experiment {small.name!r}"
    kids = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("elm.role") == "trial"]
    assert len(kids) == expected_trials(small)
    assert [r.info.status for r in kids if r.info.status != "FINISHED"] == []  # none RUNNING, none FAILED
    cadence = evaluated_epochs(small)
    for run in kids:
        trained = {m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}
        for metric in metrics:
            steps = {m.step for m in client.get_metric_history(run.info.run_id, metric)}
            assert steps and steps <= cadence and max(steps) == max(trained), (run.info.run_name, metric, steps)
            if small.train.eval_every > 1:
                assert trained - steps, "every epoch evaluated: the file's eval_every was not kept"

    # what the user reads: trials.csv and summary.md with every trial and its status
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == len(kids)
    summary = (out / "summary.md").read_text()
    for trial_id in trials["trial_id"].astype(str):
        lines = [ln for ln in summary.splitlines() if trial_id in ln]
        assert any(re.search("|".join(STATUSES), ln) for ln in lines), f"trial {trial_id} has no status line"
    launcher = "in_trial" if parse_platform(full).resources.runs_in_trial else "ray_train"
    assert (out / "launcher.txt").read_text().strip() == launcher
