"""The names a sweep's MLflow runs are written and read by (platform.tracking writes, platform.report reads)."""

TAG_SWEEP = "elm.sweep"  # every run of a sweep
TAG_ROLE = "elm.role"  # "parent" (the sweep) or "trial"
TAG_TRIAL = "elm.trial_id"  # Tune's trial id: how a resumed sweep finds its runs again
TAG_VARIANT = "variant"  # ablation variant, or SEARCH_VARIANT for trials of a search
SEARCH_VARIANT = "search"
PER_CLASS_ARTIFACT = "margins/per_class.json"
