"""The Pareto front of a multi-objective sweep, read from its persisted Optuna study (``<dir>/optuna.db``).

A sweep with several metrics (``tune.metric: [val/acc_many, val/acc_medium]``) has no single best trial: its result
is the set of trials no other trial beats on every metric at once. Optuna keeps that set itself
(``Study.best_trials``, over the COMPLETE trials); ``summary.md``, the MLflow parent run and the report all show that
set as the study gives it, never one recomputed from the trial table. Each Optuna trial carries its Tune trial id
as the user attribute ``tune_trial_id`` (``platform.search_gate``), which links the front to the trial table and
the MLflow runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

TUNE_TRIAL_ATTR = "tune_trial_id"  # set on each Optuna trial by platform.search_gate


@dataclass(frozen=True)
class FrontTrial:
    """One trial of the front.

    Attributes:
        trial_id: Tune's trial id ("" if the study trial was never linked to one).
        number: Optuna's trial number in the study.
        values: metric name -> the value the study holds (the trial's last evaluated one).
        params: the sampled values, by Optuna's names (``loss.tau``).
    """

    trial_id: str
    number: int
    values: dict[str, float]
    params: dict[str, Any]

    def as_record(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "optuna_number": self.number, "values": self.values, "params": self.params}


def study_front(study: Any, metrics: Sequence[str]) -> list[FrontTrial]:
    """``study.best_trials`` as ``FrontTrial``s, ordered by the first metric's value in the study's direction
    (ties by trial number).

    Args:
        study: an ``optuna.Study`` with one direction per metric.
        metrics: the names of the study's objectives, in the order of its directions (``tune.metric``).
    Raises:
        ValueError: the study has another number of objectives than ``metrics``.
    """
    if len(study.directions) != len(metrics):
        raise ValueError(
            f"study '{study.study_name}' has {len(study.directions)} objective(s), tune.metric names "
            f"{len(metrics)}: {list(metrics)}"
        )
    front = [
        FrontTrial(
            str(t.user_attrs.get(TUNE_TRIAL_ATTR, "")),
            t.number,
            {m: float(v) for m, v in zip(metrics, t.values)},
            dict(t.params),
        )
        for t in study.best_trials
    ]
    sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
    return sorted(front, key=lambda f: (sign * f.values[metrics[0]], f.number))


def load_front(db: Path, study_name: str, metrics: Sequence[str]) -> list[FrontTrial]:
    """The front of the study ``study_name`` in the SQLite file ``db``.

    Raises:
        FileNotFoundError: ``db`` is missing.
        ValueError: the study's objectives do not match ``metrics``.
    """
    import optuna

    if not db.is_file():
        raise FileNotFoundError(f"{db}: no persisted Optuna study (tune.study_storage)")
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{db.resolve()}")
    return study_front(study, metrics)
