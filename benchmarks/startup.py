"""Time from process start of ``python -m platform.tune ablations/smoke.yaml --smoke`` to its first trial result.

    python -m benchmarks.startup [--config ablations/smoke.yaml] [--launchers in_trial ray_train] [--no-total]

Measured from outside, each part in a fresh interpreter (no code in ``elm``/``platform`` is instrumented):

  interpreter   ``python -c pass``
  imports       everything the command imports before its first trial: elm, platform.tune, ray, ray.tune,
                ray.train.torch, optuna, mlflow and the trainable/tracking modules
  ray start     ``platform.runtime.start_ray`` as ``platform.tune.run`` calls it (a new loopback-only local cluster)
  data load     ``load_data`` of the smoked config (``make_plan`` does it once; each worker does it again)
  model build   model + loss from the registries
  first epoch   ``elm.train.fit`` until its first report (one epoch plus its evaluation), in-process
  total         the real command as a subprocess until ``<out>/ray/<name>/*/result.json`` has a line

The total is measured once per ``--launchers`` value (``resources.launcher``: ``in_trial`` trains inside the Tune
trial's process, ``ray_train`` starts a TorchTrainer's controller and worker actors per trial).
``total - sum(parts)`` is what Tune, Train and MLflow add on top: actor and worker-group start, the worker
process's own imports and data load, the Train -> Tune report hop, the MLflow run creation.
"""

from __future__ import annotations

import glob
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO_ROOT, benchmark_parser, print_header, print_load_at_end, print_table

POLL_SECONDS = 0.1
TIMEOUT_SECONDS = 600

IMPORTS = """
import time; t = time.perf_counter()
import torch, elm.train, elm.data, platform.tune, ray, ray.tune, ray.train.torch, optuna, mlflow
import platform.trainables.driver, platform.trainables.in_trial, platform.tracking, platform.runtime
print(time.perf_counter() - t)
"""
RAY_START = """
import ray, time; from platform.runtime import start_ray; from platform.spec import ResourcesSpec
t = time.perf_counter(); start_ray(None, ResourcesSpec()); print(time.perf_counter() - t)
ray.shutdown()
"""
DATA_MODEL_EPOCH = """
import json, sys, time
from elm.config import load_config
from elm.data import load_data
from elm.registry import LOSSES, MODELS
from elm.train import Experiment, fit
from platform.smoke import smoke
cfg = smoke(load_config(sys.argv[1]))
t0 = time.perf_counter(); data = load_data(cfg.data.name, cfg.data.kwargs); t1 = time.perf_counter()
in_ch = int(data.train.images.shape[1])
model = MODELS.build(cfg.model.name, cfg.model.kwargs, num_classes=data.num_classes, in_channels=in_ch,
                     image_size=data.image_size)
loss = LOSSES.build(cfg.loss.name, cfg.loss.kwargs, class_counts=data.class_counts); t2 = time.perf_counter()
first = []
def report(r):
    if not first: first.append(time.perf_counter())
fit(cfg, report, experiment=Experiment(data=data, model=model, loss=loss, in_channels=in_ch))
print(json.dumps({"data load": t1 - t0, "model build": t2 - t1, "first epoch": first[0] - t2}))
"""


def run_snippet(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter from the repo root; return its last stdout line."""
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"snippet failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


def time_interpreter() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=REPO_ROOT, check=True)
    return time.perf_counter() - t0


def time_to_first_result(config: str, launcher: str) -> tuple[float, float]:
    """(seconds until the first trial's result.json has a line, seconds until the command exits)."""
    name = Path(config).stem
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "platform.tune",
                config,
                "--smoke",
                "--out",
                str(out),
                "--set",
                f"resources.launcher={launcher}",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first = None
        while time.perf_counter() - t0 < TIMEOUT_SECONDS:
            if first is None:
                for f in glob.glob(str(out / "ray" / "*" / "*" / "result.json")):
                    if Path(f).read_text().strip():
                        first = time.perf_counter() - t0
                        break
            if proc.poll() is not None:
                break
            time.sleep(POLL_SECONDS)
        else:
            proc.kill()  # our own child, by handle
        proc.wait()
        done = time.perf_counter() - t0
        if first is None:
            raise RuntimeError(
                f"no result.json appeared under {out / 'ray'} (exit code {proc.returncode}); "
                f"is '{name}' the sweep name?"
            )
        return first, done


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("startup", __doc__)
    parser.add_argument("--config", default="ablations/smoke.yaml")
    parser.add_argument(
        "--launchers",
        nargs="+",
        default=["in_trial", "ray_train"],
        choices=["in_trial", "ray_train", "auto"],
        help="resources.launcher values to time",
    )
    parser.add_argument("--no-total", action="store_true", help="skip the end-to-end runs (~1 min each)")
    args = parser.parse_args(argv)
    print_header(f"start-up of `python -m platform.tune {args.config} --smoke` (seconds, lower is better)")
    parts: dict[str, float] = {"interpreter": time_interpreter()}
    parts["imports"] = float(run_snippet(IMPORTS))
    parts["ray start"] = float(run_snippet(RAY_START))
    parts.update(json.loads(run_snippet(DATA_MODEL_EPOCH, args.config)))
    rows = [[k, f"{v:.2f}"] for k, v in parts.items()]
    rows.append(["sum of parts", f"{sum(parts.values()):.2f}"])
    for launcher in [] if args.no_total else args.launchers:
        first, done = time_to_first_result(args.config, launcher)
        rows.append([f"{launcher}: total, start -> first trial result", f"{first:.2f}"])
        rows.append(["  of which Tune/Train/MLflow orchestration", f"{first - sum(parts.values()):.2f}"])
        rows.append([f"{launcher}: command finished (all trials)", f"{done:.2f}"])
    print_table(["part", "seconds"], rows)
    print_load_at_end()
    return 0


if __name__ == "__main__":
    sys.exit(main())
