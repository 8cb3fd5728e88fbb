"""Run an experiment's sweep or ablation with Ray Tune (Optuna TPE + ASHA, or a grid), Ray Train and MLflow.

    python -m platform.tune ablations/cifar100.yaml [--set key=value ...] [--smoke] [--resume] [--address ADDR]
                                                    [--storage URI] [--out DIR]

Everything that can be known up front is validated before Ray starts (``platform.plan``). Outputs go to
``experiments/<name>/`` (or ``--out``; ``platform.layout``): ``ray/`` (Tune state), ``train/`` (each trial's
checkpoints), ``mlflow.db`` and ``mlartifacts/`` (the default MLflow store), ``optuna.db`` (with
``tune.study_storage``), ``trials.csv`` and ``summary.md``. With ``--storage URI`` (``tune.storage``; a shared
folder or ``s3://bucket/prefix``) ``ray/`` and ``train/`` go to ``<URI>/<out folder name>/`` instead
(``platform.storage``); on a joined cluster every node is checked for that storage and the data first
(``platform.nodecheck``). Interrupted (even by SIGKILL)? Run the same command with ``--resume``: the sweep continues
with the config, data paths, storage and launcher it started with. A failing trial fails alone; the exit code is 1
only when no trial succeeded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Sequence

from elm.config import ConfigError, parse_set_args
from elm.data import DatasetCorruptError
from platform.best import best_index
from platform.launch import build_tuner, make_tracker, make_trainable, param_space  # noqa: F401  (re-exported)
from platform.plan import Plan, absolute_data_paths, make_plan, record_start  # noqa: F401  (re-exported)
from platform.pareto import FrontTrial
from platform.report.summary import sweep_front, write_summary
from platform.report.trials import EPOCHS, FINISHED, STOPPED, records_from_results


def run(plan: Plan, *, resume: bool = False, address: str | None = None, config_path: str = "CONFIG") -> list[Any]:
    """Start (or join) Ray, run the sweep, write the summary; returns the trial table's records.

    The summary is printed after Ray has shut down, so it is the last thing on the terminal.
    """
    import ray

    from platform.runtime import start_ray

    try:
        plan.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {plan.out}: cannot create it ({e.strerror or e})") from None
    # Evaluation (hence the tuned metric) runs every train.eval_every epochs and not in a failed trial's last
    # report; Tune must accept results without it. The searcher sees only evaluated results
    # (platform.search_gate); ASHA skips the others itself.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    start_ray(address, plan.spec.resources)  # refuses a trial too big for this machine, or an address nobody answers
    if address is not None:
        from platform.nodecheck import check_nodes
        from platform.ray_address import CLIENT_SCHEME

        try:  # every node reaches the storage (shared, not node-local) and holds the data
            check_nodes(
                plan.storage, plan.cfg.data.name, plan.cfg.data.kwargs, client=address.startswith(CLIENT_SCHEME)
            )
        except ConfigError:
            ray.shutdown()
            raise
    tracker = make_tracker(plan)
    guard = None
    if address is not None and plan.spec.tune.max_pending_s > 0:  # a joined cluster may never fit a trial
        from platform.failures import StopWhenNothingCanStart

        guard = StopWhenNothingCanStart(plan.spec.tune.max_pending_s)
    try:
        tuner = build_tuner(plan, tracker, resume=resume, pending_guard=guard)  # refuses an existing/missing sweep
        if not resume:
            record_start(plan)
        results = tuner.fit()
        records = records_from_results(results, plan.spec.tune.metrics)
        front = sweep_front(plan)  # several metrics: the Pareto front, as the Optuna study holds it
        df, text = write_summary(
            records,
            plan,
            config_path=config_path,
            tracking_uri=tracker.tracking_uri,
            stopped=guard.reason if guard is not None else None,
            front=front,
        )
        finish_tracking(plan, df, front)
        close_stale_study_trials(plan)
    finally:
        ray.shutdown()
    print("\n" + text, flush=True)
    if guard is not None and guard.reason:
        print(f"error: the sweep stopped early: {guard.reason}", file=sys.stderr, flush=True)
    return records


def finish_tracking(plan: Plan, df: Any, front: list[FrontTrial] | None = None) -> None:
    """Put the best trial (``platform.best``) and its value on the sweep's MLflow parent run; for several metrics,
    the study's Pareto front (``front``) instead."""
    t = plan.spec.tune
    tracker = make_tracker(plan)  # a fresh client: Tune may have used a restored copy of the callback
    tracker.setup()
    idx = None
    if not t.multi_objective and len(df):
        idx = best_index(df, t.metric, t.mode, plan.cfg.optim.epochs, epoch_col=EPOCHS)
    if t.multi_objective:
        tracker.record_front(t.metrics, t.modes, front or [])
    elif idx is None:
        tracker.record_best(t.metric, None, None)
    else:
        tracker.record_best(t.metric, str(df.loc[idx, "trial_id"]), float(df.loc[idx, t.metric]))
    # The sweep failed only if no trial succeeded (as its exit code); failed trials are counted on the parent.
    tracker.close_parent("FINISHED" if df["status"].isin([FINISHED, STOPPED]).any() else "FAILED")


def close_stale_study_trials(plan: Plan) -> None:
    """Mark Optuna trials still RUNNING in ``optuna.db`` once the sweep has ended as FAIL (asked for by a driver that
    was killed before Tune recorded them, so no trial will ever finish them)."""
    if plan.spec.tune.searcher != "optuna" or not plan.spec.tune.study_storage or not plan.layout.optuna_db.is_file():
        return
    from platform.searchers import close_stale_trials

    n = close_stale_trials(f"sqlite:///{plan.layout.optuna_db}", plan.sweep_name)
    if n:
        print(
            f"note: marked {n} Optuna trial(s) left RUNNING by an interrupted driver as FAIL in "
            f"{plan.layout.optuna_db}",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform.tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="experiment YAML, e.g. ablations/cifar100.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any key, e.g. --set loss.tau=0.5 --set tune.num_samples=32",
    )
    parser.add_argument("--smoke", action="store_true", help="a 1-2 minute version: less data, epochs and trials")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted sweep in its folder, with the config it started with",
    )
    parser.add_argument(
        "--allow-code-change",
        action="store_true",
        help="with --resume: continue although elm/ or platform/ changed since the sweep started (its finished "
        "trials ran the earlier code)",
    )
    parser.add_argument("--address", default=None, help="an existing Ray cluster (also RAY_ADDRESS)")
    parser.add_argument("--out", default=None, help="experiment folder (default experiments/<name>)")
    parser.add_argument(
        "--storage",
        default=None,
        metavar="URI",
        help="where Tune's state and checkpoints go (tune.storage): a shared folder or s3://bucket/"
        "prefix; default: the experiment folder. Required to be shared on a multi-node cluster",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        plan = make_plan(
            args.config,
            parse_set_args(args.overrides),
            smoke_run=args.smoke,
            out=args.out,
            resume=args.resume,
            storage=args.storage,
            allow_code_change=args.allow_code_change,
        )
        address = args.address
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or None
        records = run(plan, resume=args.resume, address=address, config_path=args.config)
    except (ConfigError, FileNotFoundError, DatasetCorruptError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - t0:.0f} s; outputs in {plan.out}", flush=True)
    return 0 if any(r.succeeded for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
