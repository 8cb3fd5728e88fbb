"""Searchers by name: ``SEARCHERS`` is the table of ``tune.searcher`` values (how each is built, whether it takes
grid axes, how it counts samples). Adding a searcher is one row. No Ray import at module level: planning reads
the table before Ray starts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


def _optuna(seed: int, study_name: str, storage_url: str | None) -> Any:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    storage = optuna.storages.RDBStorage(storage_url) if storage_url else None
    return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed), study_name=study_name, storage=storage)


@dataclass(frozen=True)
class SearcherEntry:
    """One ``tune.searcher`` value.

    Attributes:
        build: ``(seed, study_name, storage_url) -> Searcher``, or None for Tune's own variant generator (which
            expands grid axes and samples the other kinds).
        grid_axes: ``"no"`` (cannot take ``grid`` axes), ``"yes"`` (may) or ``"only"`` (takes nothing else).
        draws_samples: True if ``tune.num_samples`` trials are drawn; False if each grid point runs once.
    """

    build: Callable[[int, str, str | None], Any] | None
    grid_axes: str
    draws_samples: bool

    def num_samples(self, configured: int) -> int:
        return configured if self.draws_samples else 1


SEARCHERS: dict[str, SearcherEntry] = {
    "optuna": SearcherEntry(build=_optuna, grid_axes="no", draws_samples=True),  # Ray rejects grids in Optuna
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
