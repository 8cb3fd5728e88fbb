"""The layout of an experiment folder (``experiments/<name>/`` or ``--out``): every file name in one place.

``platform.tune`` writes these, ``--resume``, ``from_sweep`` and ``platform.report`` read them.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from elm.config import ConfigError

# Inside a sweep's storage folder (platform.storage), which by default is the experiment folder itself.
RAY_DIR = "ray"  # Tune's experiment state (and the in-trial checkpoints Tune keeps)
TRAIN_DIR = "train"  # each trial's own folder <name>-trial=<id>/: checkpoints, failure.txt


@dataclass(frozen=True)
class ExperimentDir:
    """Paths inside one experiment folder ``root`` (absolute)."""

    root: Path

    @property
    def config(self) -> Path:  # the resolved config the sweep started with (--resume reads it)
        return self.root / "config.yaml"

    @property
    def launcher(self) -> Path:  # in_trial | ray_train: --resume must rebuild the same trainable
        return self.root / "launcher.txt"

    @property
    def sweep_id(self) -> Path:  # the sweep's own id, tagged on its MLflow runs
        return self.root / "sweep_id.txt"

    @property
    def code(self) -> Path:  # SHA-256 of every elm/ and platform/ source when the sweep started (code_version)
        return self.root / "code_digests.json"

    @property
    def sources(self) -> Path:  # where from_sweep variants took their values
        return self.root / "variant_sources.yaml"

    @property
    def trials_csv(self) -> Path:
        return self.root / "trials.csv"

    @property
    def summary(self) -> Path:
        return self.root / "summary.md"

    @property
    def ray(self) -> Path:  # RAY_DIR when the storage is the default (no --storage / tune.storage)
        return self.root / RAY_DIR

    @property
    def train(self) -> Path:  # TRAIN_DIR when the storage is the default
        return self.root / TRAIN_DIR

    @property
    def optuna_db(self) -> Path:
        return self.root / "optuna.db"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def mlartifacts(self) -> Path:
        return self.root / "mlartifacts"

    @property
    def default_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    def read_sweep_id(self, fallback: str) -> str:
        """The id saved when the sweep started; ``fallback`` (its name) for sweeps from before ids existed."""
        return self.sweep_id.read_text().strip() if self.sweep_id.is_file() else fallback

    def check_writable(self) -> None:
        """Check, without creating anything, that the folder is or can become a writable folder.

        Raises:
            ConfigError: naming the path, if it or a parent is a file, or the nearest existing folder is read-only.
        """
        path = self.root
        while not path.exists():
            path = path.parent
        if not path.is_dir():
            raise ConfigError(f"--out {self.root}: {path} is an existing file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"--out {self.root}: {path} is not writable")


def new_sweep_id() -> str:
    return uuid.uuid4().hex
