"""Search efficiency: Optuna TPE + ASHA against a grid over the same tau x margin x lambda box.

    python -m benchmarks.search_efficiency --data-root ../shared/data [--seeds 0 1 2] [--out runs/search_eff]

The problem is ``ablations/cifar10_mlp_search.yaml`` (real CIFAR-10-LT, a one-hidden-layer MLP, the ELM
loss, 10 epochs). Each search runs as a user runs it, ``python -m platform.tune`` in a subprocess:

  grid       ``--grid-points`` values per axis: tau in [0, 2], margin in [0, 0.5], lambda log-spaced in [0.01, 1]
             (3 x 3 x 3 = 27 trials x 10 epochs by default), FIFO (every trial runs all its epochs)
  tpe+asha   the ``elm_joint`` space (the same box, continuous), TPE (seeded), ASHA (grace 1 epoch, eta 3),
             ``--num-samples`` trials; once per ``--seeds`` value

Budget is epochs trained, summed over trials (each trial reports once per epoch). A search's answer after B epochs
is the best *last reported* value of ``val/balanced_acc`` (200 held-out images per class) over the trials it has
run so far (a trial's latest epoch replaces its earlier ones, as Tune ranks trials). Reports are ordered by Tune's
``timestamp``, which has 1 s resolution: with two trials running at once, the order of reports within one second
is a guess, so "epochs to reach" can be off by an epoch or two. Printed: each search's final best, its epochs and their
fraction of the grid's, the epochs TPE+ASHA needed to come within 0.5 points of the grid's best, and the
anytime curves (CSV and PNG in ``--out``). Target (issue 5): within 0.5 points of the grid's best using at most
40 % of the grid's epochs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from benchmarks.common import REPO_ROOT, benchmark_parser, print_header, print_load_at_end, print_table

CONFIG = "ablations/cifar10_mlp_search.yaml"
METRIC = "val/balanced_acc"  # the sweep ranks trials on its balanced validation split
TOLERANCE = 0.005  # 0.5 points of balanced accuracy


@dataclass(frozen=True)
class Report:
    """One per-epoch report of one trial: when it arrived, and the metric (None if not evaluated)."""

    trial: str
    order: tuple[float, int]  # (unix timestamp, line number): the order reports reached Tune
    value: float | None


def anytime_best(reports: Iterable[Report]) -> list[tuple[int, float | None]]:
    """(epochs spent, best last-reported value so far) after every report, in arrival order.

    The answer after each report is the max over trials of each trial's most recent value (a trial that has not
    reported the metric yet does not count).
    """
    latest: dict[str, float] = {}
    curve = []
    for epochs, r in enumerate(sorted(reports, key=lambda r: r.order), start=1):
        if r.value is not None:
            latest[r.trial] = r.value
        curve.append((epochs, max(latest.values()) if latest else None))
    return curve


def epochs_to_reach(curve: Sequence[tuple[int, float | None]], target: float) -> int | None:
    """The first budget at which the curve's answer is >= ``target``; None if it never is."""
    return next((e for e, best in curve if best is not None and best >= target), None)


def read_reports(sweep_dir: Path) -> list[Report]:
    """Every per-epoch report of every trial, from Tune's ``<out>/ray/<name>/*/result.json`` files."""
    out = []
    for result in sorted(sweep_dir.glob("ray/*/*/result.json")):
        trial = result.parent.name
        for i, line in enumerate(result.read_text().splitlines()):
            if not line.strip():
                continue
            row = json.loads(line)
            if "training_iteration" not in row:
                continue
            v = row.get(METRIC)
            out.append(Report(trial, (float(row.get("timestamp", 0)), i), None if v is None else float(v)))
    return out


def grid_search_block(points: int) -> str:
    """``search:`` of the grid: ``points`` values per axis spanning the ``elm_joint`` box."""

    def lin(lo: float, hi: float) -> list[float]:
        return [round(lo + (hi - lo) * i / (points - 1), 6) for i in range(points)] if points > 1 else [lo]

    lam = [round(10 ** (-2 + 2 * i / (points - 1)), 6) for i in range(points)] if points > 1 else [0.1]
    return json.dumps(
        {"loss.tau": {"grid": lin(0.0, 2.0)}, "loss.margin": {"grid": lin(0.0, 0.5)}, "loss.lam": {"grid": lam}}
    )


def run_search(name: str, out: Path, data_root: str, extra: list[str]) -> tuple[float, Path]:
    """Run one search with ``python -m platform.tune``; (wall seconds, its folder)."""
    folder = out / name
    cmd = [
        sys.executable,
        "-m",
        "platform.tune",
        CONFIG,
        "--out",
        str(folder),
        "--set",
        f"data.root={data_root}",
        "--set",
        f"name={name}",
        *extra,
    ]
    print(f"$ {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (out / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}); see {out / (name + '.log')}:\n{proc.stderr[-1500:]}")
    return wall, folder


def plot(curves: dict[str, list[tuple[int, float | None]]], grid_epochs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, curve in curves.items():
        xs = [e for e, b in curve if b is not None]
        ys = [100 * b for _, b in curve if b is not None]
        ax.step(xs, ys, where="post", label=name, lw=2 if name == "grid" else 1.2)
    ax.axvline(0.4 * grid_epochs, color="grey", ls=":", label="40 % of the grid's epochs")
    ax.set_xlabel("epochs trained (summed over trials)")
    ax.set_ylabel(f"best {METRIC} so far (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("search_efficiency", __doc__)
    parser.add_argument("--data-root", required=True, help="folder holding cifar-10-batches-py")
    parser.add_argument("--out", default="runs/search_efficiency")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="TPE sampler seeds")
    parser.add_argument("--num-samples", type=int, default=36, help="TPE + ASHA trials per seed")
    parser.add_argument("--grid-points", type=int, default=3, help="grid values per axis")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-concurrent", type=int, default=2)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out} is not empty: platform.tune never overwrites a sweep; pass a new folder")
    out.mkdir(parents=True, exist_ok=True)
    data_root = str(Path(args.data_root).resolve())
    print_header("search efficiency: TPE + ASHA vs grid over tau x margin x lambda (real CIFAR-10-LT, MLP)")
    common = ["--set", f"optim.epochs={args.epochs}", "--set", f"tune.max_concurrent={args.max_concurrent}"]
    runs: dict[str, tuple[float, Path]] = {}
    runs["grid"] = run_search(
        "grid",
        out,
        data_root,
        common
        + [
            "--set",
            "tune.searcher=grid",
            "--set",
            "tune.scheduler=fifo",
            "--set",
            f"search={grid_search_block(args.grid_points)}",
        ],
    )
    for s in args.seeds:
        runs[f"tpe+asha seed {s}"] = run_search(
            f"tpe_asha_seed{s}",
            out,
            data_root,
            common
            + [
                "--set",
                "tune.searcher=optuna",
                "--set",
                "tune.scheduler=asha",
                "--set",
                f"tune.seed={s}",
                "--set",
                f"tune.num_samples={args.num_samples}",
            ],
        )
    curves = {name: anytime_best(read_reports(folder)) for name, (_, folder) in runs.items()}
    grid_curve = curves["grid"]
    grid_epochs, grid_best = grid_curve[-1]
    assert grid_best is not None, "the grid reported no metric"
    rows = []
    for name, curve in curves.items():
        epochs, best = curve[-1]
        reach = epochs_to_reach(curve, grid_best - TOLERANCE)
        trials = len({r.trial for r in read_reports(runs[name][1])})
        rows.append(
            [
                name,
                trials,
                epochs,
                f"{100 * epochs / grid_epochs:.0f} %",
                f"{100 * (best or 0):.2f}",
                f"{100 * ((best or 0) - grid_best):+.2f}",
                "never" if reach is None else f"{reach} ({100 * reach / grid_epochs:.0f} %)",
                f"{runs[name][0]:.0f}",
            ]
        )
    print_table(
        [
            "search",
            "trials",
            "epochs",
            "of grid's",
            f"best {METRIC} (%)",
            "vs grid (pts)",
            "epochs to grid best - 0.5 pt",
            "wall s",
        ],
        rows,
    )
    with (out / "curves.csv").open("w") as f:
        f.write("search,epochs,best\n")
        for name, curve in curves.items():
            f.writelines(f"{name},{e},{'' if b is None else b}\n" for e, b in curve)
    plot(curves, grid_epochs, out / "search_efficiency.png")
    print(f"curves: {out / 'curves.csv'}, {out / 'search_efficiency.png'}")
    print_load_at_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
