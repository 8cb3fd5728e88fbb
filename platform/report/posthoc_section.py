"""The report's post-hoc and calibration section: ECE by group from the trials' metrics, and a link to (plus the
reliability diagrams of) ``platform.posthoc``'s analysis on stored logits, when it has been run.

Calibration is expected calibration error (Guo et al. 2017, eq. 3, https://arxiv.org/abs/1706.04599) per
Many / Medium / Few, before and after post-hoc logit adjustment (Menon et al. 2021, eq. 7).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from platform.report import tables as rt
from platform.report.document import Heading, Image, Para, table
from platform.report.figures import PLOTS_DIR

MAX_RELIABILITY = 8  # reliability diagrams embedded (variants, or trials of a search in the order given)


def calibration_blocks(stats: Mapping[str, Mapping[str, rt.Stat]], metrics: Sequence[str], prefix: str) -> list[Any]:
    """ECE overall and per group, before and after adjustment at tau=1 (mean ± std over seeds), as report blocks;
    empty when the trials logged no per-group ECE (runs from before it was measured)."""

    if not any(m == f"{prefix}ece_many" or m == f"{prefix}ece_medium" for m in metrics):
        return []
    taus = [t for t in rt.posthoc_taus(metrics, prefix) if f"{prefix}posthoc_tau{t}/ece" in metrics]
    shown = [t for t in taus if t in ("1", "1.0")] or taus[:1]  # tau=1 (the paper's post-hoc) keeps the table narrow
    header, rows = rt.stat_table(stats, rt.calibration_columns(shown), prefix)
    keep = [i for i in range(len(header)) if i < 2 or any(r[i] != "—" for r in rows)]
    return [
        Heading("Calibration by group"),
        Para(
            f"ECE (15 equal-width confidence bins, Guo et al. 2017) over the {prefix.rstrip('/')} images of each "
            "group's classes, "
            "before and after post-hoc adjustment (softmax of logits - tau x log prior). Every tau the trials "
            "evaluated is in MLflow (`<split>/posthoc_tau<tau>/ece_<group>`)."
        ),
        table([header[i] for i in keep], [[r[i] for i in keep] for r in rows]),
    ]


def posthoc_blocks(experiment_dir: Path | None, out: Path, groups: Sequence[str]) -> list[Any]:
    """A link to ``<experiment_dir>/posthoc/posthoc.md`` and its reliability diagram of each group (variant, or
    trial of a search), copied into ``out/plots``; or the command that makes them."""
    from platform.posthoc import POSTHOC_DIR, reliability_file

    head = Heading("Post-hoc analysis on stored logits")
    folder = experiment_dir / POSTHOC_DIR if experiment_dir is not None else None
    if folder is None or not (folder / "posthoc.md").is_file():
        target = experiment_dir if experiment_dir is not None else "EXPERIMENT_DIR"
        return [
            head,
            Para(
                f"Not run yet: `python -m platform.posthoc {target}` searches a global tau, a tau per "
                "group and shifted test priors on every trial's stored logits (chosen on val, read on "
                "test) and draws reliability diagrams; this report links them once they exist."
            ),
        ]
    rel = Path(os.path.relpath(folder, out.resolve()))  # links that survive moving the experiment folder
    chosen = (
        "chosen on test itself (no validation split: upper bounds, not estimates)"
        if _chosen_on_test(folder)
        else "chosen on validation and read on test"
    )
    blocks = [
        head,
        Para(
            f"Global tau, tau per group and shifted test priors, {chosen}: "
            f"[`{rel / 'posthoc.md'}`]({rel / 'posthoc.md'}) (table: "
            f"[`posthoc.csv`]({rel / 'posthoc.csv'})). Reliability on test, before and after the "
            "chosen global tau, pooled over the seeds of each variant:"
        ),
    ]
    (out / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    found = [g for g in groups if (folder / "plots" / reliability_file(g)).is_file()]
    for g in found[:MAX_RELIABILITY]:
        src = folder / "plots" / reliability_file(g)
        shutil.copyfile(src, out / PLOTS_DIR / src.name)
        blocks.append(Image(f"{PLOTS_DIR}/{src.name}", f"Reliability diagram: {g}"))
    if len(found) > MAX_RELIABILITY:
        blocks.append(Para(f"{len(found) - MAX_RELIABILITY} more reliability diagrams in `{rel / 'plots'}`."))
    return blocks


def _chosen_on_test(folder: Path) -> bool:
    """Whether ``platform.posthoc`` chose any setting on test (its ``selected_on`` column says ``test (oracle)``)."""
    import pandas as pd

    csv = folder / "posthoc.csv"
    try:
        on = pd.read_csv(csv, usecols=["selected_on"])["selected_on"] if csv.is_file() else []
    except (ValueError, pd.errors.EmptyDataError):  # no such column, or an empty table
        return False
    return any("oracle" in str(v) for v in on)
