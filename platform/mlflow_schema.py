"""The names a sweep's MLflow runs are written and read by (platform.tracking writes, platform.report reads)."""

TAG_SWEEP = "elm.sweep"  # every run of a sweep: the sweep's name (for people and the UI; not unique)
TAG_SWEEP_ID = "elm.sweep_id"  # every run of a sweep: its own id, made at the start and kept in its folder
TAG_ROLE = "elm.role"  # "parent" (the sweep) or "trial"
TAG_TRIAL = "elm.trial_id"  # Tune's trial id: how a resumed sweep finds its runs again
TAG_VARIANT = "variant"  # ablation variant, or SEARCH_VARIANT for trials of a search
SEARCH_VARIANT = "search"
PER_CLASS_ARTIFACT = "margins/per_class.json"
TAG_SEED = "seed"
TAG_LOSS = "loss"
TAG_ERROR = "error"  # a failed trial's reason (one line)
TAG_OUTCOME = "elm.outcome"  # finished | stopped_early | failed
TAG_BEST_TRIAL = "elm.best_trial"  # on the parent: the best trial's id (platform.best), or "none"
# On the parent of a sweep with several metrics: the Pareto front's Tune trial ids, comma-separated ("none" if
# empty), and the front itself (ids, Optuna numbers, values, params) as a JSON artifact; both from the study.
TAG_PARETO_FRONT = "elm.pareto_front"
PARETO_ARTIFACT = "pareto_front.json"


def best_metric_key(metric: str) -> str:
    """The parent run's metric holding the best trial's value of ``metric``: ``best/<split>/<name>``."""
    return f"best/{metric}"


def quote(value: str) -> str:
    """``value`` as a string literal for an MLflow filter string (which has no escape for a quote character).

    Raises:
        ValueError: ``value`` holds both kinds of quote.
    """
    value = str(value)
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"cannot search MLflow for {value!r}: it holds both ' and \"")
