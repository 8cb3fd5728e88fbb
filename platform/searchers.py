"""Searchers by name: ``SEARCHERS`` is the table of ``tune.searcher`` values (how each is built, whether it takes
grid axes, how it counts samples, whether it takes several metrics), and ``SAMPLERS`` the table of Optuna samplers
(``tune.sampler``). Adding either is one row. No Ray or Optuna import at module level: planning reads the tables
before Ray starts.

Several metrics (``tune.metric: [a, b]``, ``tune.mode: [max, max]``) go to Ray's ``OptunaSearch`` as lists, which
creates a study with one direction per metric; NSGA-II (Deb et al. 2002) and TPE (multi-objective TPE, Ozaki et al.
2020, in the same ``TPESampler``) both search it. Tune itself is then given no metric (``platform.launch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


def _tpe(seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)  # multi-objective TPE when the study has several directions


def _nsga2(seed: int) -> Any:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed)


SAMPLERS: dict[str, Callable[[int], Any]] = {"tpe": _tpe, "nsga2": _nsga2}  # tune.sampler -> (seed) -> sampler


def _optuna(
    seed: int,
    study_name: str,
    storage_url: str | None,
    *,
    sampler: str = "tpe",
    metric: list[str] | None = None,
    mode: list[str] | None = None,
) -> Any:
    """Ray's ``OptunaSearch``. ``metric``/``mode``: lists for a multi-objective study; None for one metric (Tune
    passes it through ``TuneConfig``)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    storage = optuna.storages.RDBStorage(storage_url) if storage_url else None
    return OptunaSearch(
        metric=metric, mode=mode, sampler=SAMPLERS[sampler](seed), study_name=study_name, storage=storage
    )


@dataclass(frozen=True)
class SearcherEntry:
    """One ``tune.searcher`` value.

    Attributes:
        build: ``(seed, study_name, storage_url, *, sampler, metric, mode) -> Searcher``, or None for Tune's own
            variant generator (which expands grid axes and samples the other kinds).
        grid_axes: ``"no"`` (cannot take ``grid`` axes), ``"yes"`` (may) or ``"only"`` (takes nothing else).
        draws_samples: True if ``tune.num_samples`` trials are drawn; False if each grid point runs once.
        multi_objective: True if it searches several metrics at once (a list in ``tune.metric``).
    """

    build: Callable[..., Any] | None
    grid_axes: str
    draws_samples: bool
    multi_objective: bool = False

    def num_samples(self, configured: int) -> int:
        return configured if self.draws_samples else 1


SEARCHERS: dict[str, SearcherEntry] = {
    # Ray rejects grids in Optuna
    "optuna": SearcherEntry(build=_optuna, grid_axes="no", draws_samples=True, multi_objective=True),
    "random": SearcherEntry(build=None, grid_axes="yes", draws_samples=True),
    "grid": SearcherEntry(build=None, grid_axes="only", draws_samples=False),
}


def close_stale_trials(storage_url: str, study_name: str) -> int:
    """Mark every trial of the study still RUNNING as FAIL, with a ``closed_by`` user attribute; returns how many.

    Call it only when the sweep has ended: then no Tune trial can finish them.
    """
    import optuna
    from optuna.trial import TrialState

    storage = optuna.storages.RDBStorage(storage_url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        storage.set_trial_user_attr(trial._trial_id, "closed_by", "sweep end: its driver was interrupted")
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    return len(stale)
