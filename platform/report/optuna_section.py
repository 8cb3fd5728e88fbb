"""The report's section on a sweep's persisted Optuna study (``<dir>/optuna.db``, ``tune.study_storage: true``):
Optuna's own plots (``optuna.visualization.matplotlib``: optimisation history, parallel coordinates, parameter
importances by fANOVA, Hutter et al. 2014) and the command that opens the study in ``optuna-dashboard``.

The study is the one Ray Tune's ``OptunaSearch`` filled: its trials are the Tune trials the searcher was told about
(``platform.search_gate`` passes evaluated results only), with the value of ``tune.metric`` at the trial's last
evaluation; a trial ASHA stopped early is PRUNED there, and Optuna's plots draw complete trials only.

A study with several objectives (a multi-objective sweep) gets its Pareto front instead: the table of
``study.best_trials`` (``platform.pareto``; the same front as ``summary.md`` and the MLflow parent's
``pareto_front.json``) and Optuna's own ``plot_pareto_front``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from platform.layout import ExperimentDir
from platform.report.document import Heading, Image, Para, table
from platform.report.figures import PLOTS_DIR, save_figure

DASHBOARD = "optuna-dashboard"  # pip install optuna-dashboard (not in requirements.lock)


def dashboard_command(db: Path) -> str:
    """The shell command that serves the study in Optuna's dashboard (http://127.0.0.1:8080 by default)."""
    return f"{DASHBOARD} sqlite:///{db.resolve()}"


def load_study(db: Path, name: str) -> Any:
    """The study ``name`` in ``db``, or its only study when no study has that name; None if there is none.

    Raises:
        FileNotFoundError: ``db`` holds several studies and none is called ``name``.
    """
    import optuna

    url = f"sqlite:///{db.resolve()}"
    names = [s.study_name for s in optuna.study.get_all_study_summaries(url)]
    if not names:
        return None
    if name not in names:
        if len(names) > 1:
            raise FileNotFoundError(f"{db}: no study '{name}' among {names}")
        name = names[0]
    return optuna.load_study(study_name=name, storage=url)


def _figure(plot: Callable[..., Any], study: Any) -> Any:
    """A matplotlib Figure from one ``optuna.visualization.matplotlib`` function (they return Axes, or an array
    of Axes for several objectives); Optuna marks them experimental, which is said once in the report instead."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot(study)
    first = ax.flat[0] if hasattr(ax, "flat") else ax
    fig = first.figure
    fig.set_size_inches(9, 5)
    fig.tight_layout()
    return fig


def front_blocks(study: Any, out: Path, objectives: Sequence[str]) -> list[Any]:
    """The Pareto front of a multi-objective study: its ``best_trials`` as a table, and Optuna's front plot."""
    from optuna.visualization import matplotlib as ovm

    from platform.pareto import study_front

    front = study_front(study, objectives)
    directions = ", ".join(f"`{m}` ({d.name.lower()})" for m, d in zip(objectives, study.directions))
    params = sorted({k for f in front for k in f.params})
    blocks: list[Any] = [
        Heading("Pareto front (Optuna study)"),
        Para(
            f"{len(front)} trial(s) on the front of {directions}: `study.best_trials` of the persisted study, not "
            "recomputed here (the same front as `summary.md` and the MLflow parent run's `pareto_front.json`). "
            "Values are each trial's last evaluated ones."
        ),
        table(
            ["trial", "optuna #", *objectives, *params],
            [
                [
                    f.trial_id or "?",
                    str(f.number),
                    *[f"{f.values[m]:.4f}" for m in objectives],
                    *[
                        f"{f.params[k]:.4g}" if isinstance(f.params.get(k), float) else str(f.params.get(k, "—"))
                        for k in params
                    ],
                ]
                for f in front
            ],
        ),
    ]
    if len(objectives) in (2, 3) and front:  # Optuna draws 2 or 3 objectives
        fig = _figure(lambda st: ovm.plot_pareto_front(st, target_names=list(objectives)), study)
        blocks.append(Image(save_figure(fig, out, "optuna_pareto_front.png"), "Optuna: Pareto front"))
    return blocks


def optuna_blocks(experiment_dir: Path | None, out: Path, study_name: str, objectives: Sequence[str] = ()) -> list[Any]:
    """Report blocks for the study in ``experiment_dir/optuna.db``; empty when the sweep persisted none.
    ``objectives``: the metric names of a multi-objective study, in its order (``tune.metric``)."""
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    db = ExperimentDir(experiment_dir).optuna_db if experiment_dir is not None else None
    if db is None or not db.is_file():
        return []
    study = load_study(db, study_name)
    if study is None:
        return []
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    several = len(study.directions) > 1  # Optuna's history and importance plots need one target: the front instead
    plots_text = (
        "Its plot is Optuna's own `plot_pareto_front` (`optuna.visualization.matplotlib`, marked "
        "experimental by Optuna), over the complete trials."
        if several
        else "The plots below are Optuna's own (`optuna.visualization.matplotlib`, marked experimental by "
        "Optuna) and draw the complete trials only: trials ASHA stopped early are PRUNED in the study. "
        "Importances from a handful of trials are noise."
    )
    blocks: list[Any] = [
        Heading("Optuna study"),
        Para(
            f"Study `{study.study_name}` in `{db}`: {len(study.trials)} trials, {len(done)} complete. Open it in "
            f"Optuna's dashboard with `{dashboard_command(db)}` (then http://127.0.0.1:8080). {plots_text}"
        ),
    ]
    (out / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    if several:
        names = (
            list(objectives)
            if len(objectives) == len(study.directions)
            else [f"objective {i}" for i in range(len(study.directions))]
        )
        return blocks + front_blocks(study, out, names)
    plots = (
        ("optuna_history.png", ovm.plot_optimization_history, "Optimisation history", 1),
        ("optuna_parallel_coordinate.png", ovm.plot_parallel_coordinate, "Parallel coordinates", 2),
        ("optuna_param_importances.png", ovm.plot_param_importances, "Parameter importances (fANOVA)", 2),
    )
    for name, plot, title, needs in plots:  # needs: complete trials without which the plot says nothing
        if len(done) < needs:
            blocks.append(Para(f"{title}: not drawn (needs {needs} complete trials, the study has {len(done)})."))
            continue
        try:
            fig = _figure(plot, study)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:  # e.g. importances need 2+ complete trials
            blocks.append(Para(f"{title}: not drawn ({e})."))
            continue
        blocks.append(Image(save_figure(fig, out, name), f"Optuna: {title}"))
    return blocks
