"""The checks ``platform.plan.make_plan`` runs before Ray starts, each raising ``ConfigError`` naming what to fix:
a storage folder that is not writable, a tracking URI MLflow cannot write to, and a ``tune.metric`` the trials
will never report (or an evaluation split the data lacks).
"""

from __future__ import annotations

import os
from pathlib import Path

from elm.config import ConfigError, ExperimentConfig, with_overrides
from elm.data import load_data
from elm.metrics.reported import evaluation_metric_names, is_training_metric, training_metric_names
from elm.registry import LOSSES
from platform.spec import PlatformSpec
from platform.storage import StoragePath


def check_storage(folder: StoragePath, root: str) -> None:
    """A local storage folder must be or become a writable folder (remote ones were reached by ``resolve_storage``).

    Raises:
        ConfigError: naming the storage root and the folder that is not writable.
    """
    local = folder.local()
    if local is None:
        return
    path = local
    while not path.exists():
        path = path.parent
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"--storage {root}: {path} is not a writable folder")


TRACKING_SCHEMES = ("sqlite", "http", "https", "file", "postgresql", "mysql", "mssql", "databricks")
TRACKING_PROBE_S = 5.0  # a tracking server must answer its /health page within this


def check_tracking_uri(uri: str, timeout_s: float = TRACKING_PROBE_S) -> None:
    """``tracking.uri`` must be a store MLflow can write to: a known scheme, an SQLite file whose folder exists,
    and for ``http(s)://`` a server that answers its ``/health`` page now (MLflow itself would retry silently for
    minutes).

    Raises:
        ConfigError: naming the URI and what is wrong.
    """
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    scheme = urlsplit(uri).scheme.split("+")[0]
    if scheme not in TRACKING_SCHEMES and not (scheme == "" and uri.startswith("/")):
        raise ConfigError(
            f"tracking.uri '{uri}': unsupported scheme '{scheme}'; use sqlite:///PATH/mlflow.db, "
            f"http(s)://HOST:PORT (an mlflow server) or file:///PATH"
        )
    if scheme == "sqlite":
        folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else None
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"tracking.uri '{uri}': folder {folder} does not exist")
    if scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s) as response:
                if response.status != 200:
                    raise ConfigError(f"tracking.uri '{uri}': /health answered HTTP {response.status}")
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ConfigError(
                f"tracking.uri '{uri}': no MLflow server answers there ({reason}); start one with "
                f"'mlflow server' or drop tracking.uri"
            ) from None


def check_metric_prefix(cfg: ExperimentConfig, spec: PlatformSpec) -> None:
    """Every ``tune.metric`` must be a training metric or one of the evaluation split's (``train.eval_split``).

    Raises:
        ConfigError: naming the metric and the split.
    """
    split = cfg.train.eval_split
    for metric, mode in zip(spec.tune.metrics, spec.tune.modes):
        if mode == "max" and metric.rsplit("/", 1)[-1].startswith("loss"):
            raise ConfigError(f"tune.metric '{metric}' is a loss but tune.mode is 'max': set its tune.mode: min")
        if is_training_metric(metric) or metric.startswith(f"{split}/"):
            continue
        rest = metric.partition("/")[2]
        hint = f"; did you mean '{split}/{rest}'?" if rest else ""
        raise ConfigError(
            f"tune.metric '{metric}' is never reported: trials evaluate on the '{split}' split (train.eval_split){hint}"
        )


def check_metric_and_data(cfg: ExperimentConfig, spec: PlatformSpec) -> None:
    """Load the dataset (fails now, with the path to fix, if it is missing or corrupt) and check that it has the
    evaluation split and that every ``tune.metric`` is among the metrics an evaluation of its class counts reports
    (CIFAR-10-LT at rho = 100 has no Few class, so ``val/acc_few`` is refused there).

    Raises:
        ConfigError: no validation split for ``train.eval_split: val``; a metric the trials will not report.
    """
    data = load_data(cfg.data.name, cfg.data.kwargs)
    split = cfg.train.eval_split
    if split == "val" and data.val is None:
        raise ConfigError(
            f"train.eval_split: val, but dataset '{cfg.data.name}' has no validation split "
            f"(set data.val_per_class > 0 where the dataset takes it)"
        )
    for metric in spec.tune.metrics:
        if is_training_metric(metric):
            # every variant must report it (a loss term of one loss is not reported by another)
            configs = [cfg] + [
                with_overrides(cfg, dict(v))
                for v in (spec.ablation.variants.values() if spec.ablation is not None else [])
            ]
            reported = set.intersection(
                *[
                    training_metric_names(
                        LOSSES.build(c.loss.name, c.loss.kwargs, class_counts=data.class_counts), data.num_classes
                    )
                    for c in configs
                ]
            )
            if metric not in reported:
                raise ConfigError(
                    f"tune.metric '{metric}' is never reported by loss '{cfg.loss.name}'"
                    + (" (or some ablation variant's loss)" if len(configs) > 1 else "")
                    + f"; training metrics: {sorted(reported)}"
                )
            continue
        names = evaluation_metric_names(split, data.class_counts, cfg.train.posthoc_taus)
        if metric not in names:
            stem = metric.rsplit("/", 1)[-1].split("_")[0]  # e.g. "acc" of "test/acc_many"
            close = sorted(n for n in names if n.rsplit("/", 1)[-1].split("_")[0] == stem)
            raise ConfigError(
                f"tune.metric '{metric}' is never reported for '{cfg.data.name}' (its class counts "
                f"give no such metric); candidates: {close[:8] or sorted(names)[:8]}"
            )
