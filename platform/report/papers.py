"""The published figures a report places its numbers beside, and how comparable they are.

Menon et al. 2021, "Long-tail learning via logit adjustment", Table 3 (https://arxiv.org/abs/2007.07314): balanced
test accuracy in % of ERM (CE), post-hoc logit adjustment of the CE logits and the logit-adjusted loss, with the
training epochs of its protocols; numbers from shorter runs are not comparable with them.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from platform.report.tables import Stat, format_stat

POSTHOC = "posthoc"  # the CE variant's logits adjusted after training with tau = 1 (Menon et al. 2021, eq. 7)

# LA paper, Table 3: balanced accuracy (%) of ERM, post-hoc logit adjustment, and the logit-adjusted loss.
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "cifar10_lt": {"ce": 72.84, POSTHOC: 77.40, "la": 77.67},
    "cifar100_lt": {"ce": 38.36, POSTHOC: 41.76, "la": 43.89},
    "imagenet_lt": {"la": 51.11},
    "inaturalist2018": {"la": 66.36},
}
PAPER_SOURCE = "Menon et al. 2021 (logit adjustment), Table 3"
# Training epochs of the protocols behind PAPER_RESULTS (LA paper: the CIFAR recipe 200, ImageNet-LT and
# iNaturalist 90): numbers from shorter runs are not comparable with them.
PAPER_EPOCHS: dict[str, int] = {"cifar10_lt": 200, "cifar100_lt": 200, "imagenet_lt": 90, "inaturalist2018": 90}


def paper_epochs_note(dataset: str, epochs: Sequence[int]) -> tuple[str, bool]:
    """How runs of ``epochs`` (the epochs of the trials whose numbers are shown) compare with the paper's protocol.

    Returns:
        (label, comparable): e.g. ``("paper: 200 epochs; these runs: 2 epochs — not comparable", False)``;
        ``("", False)`` when the paper has no figure for ``dataset``. Unknown epochs are never comparable.
    """
    paper = PAPER_EPOCHS.get(dataset)
    if paper is None or dataset not in PAPER_RESULTS:
        return "", False
    known = sorted({int(e) for e in epochs})
    if not known:
        return f"paper: {paper} epochs; these runs: epochs unknown — not known to be comparable", False
    ours = f"{known[0]} epochs" if len(known) == 1 else f"{known[0]}-{known[-1]} epochs"
    if known[0] < paper:
        return f"paper: {paper} epochs; these runs: {ours} — not comparable", False
    return f"paper: {paper} epochs; these runs: {ours}", True


def paper_rows(
    stats: Mapping[str, Mapping[str, Stat]],
    roles: Mapping[str, str],
    dataset: str,
    prefix: str,
    epochs: Sequence[int] = (),
) -> tuple[list[str], list[list[str]]]:
    """Our balanced accuracy beside the paper's, per role (CE, post-hoc tau=1 on CE, LA loss, ELM ...).

    Rows exist for every variant, plus 'post-hoc tau=1 on CE' when a CE variant reports it. The paper column is
    blank where the paper has no figure (e.g. ELM, or a dataset outside Table 3). Its header says how many epochs
    the paper trained and these runs did (``epochs``), and "not comparable" when ours are fewer or unknown.
    """
    paper = PAPER_RESULTS.get(dataset, {})
    key = prefix + "balanced_acc"
    note, comparable = paper_epochs_note(dataset, epochs)
    header = [
        "method",
        "ours: balanced acc (%)",
        f"paper (%): {PAPER_SOURCE}" + (f"; {note}" if note else ""),
        "ours - paper (%-pts)" + ("" if comparable or not note else ", not comparable"),
    ]
    rows = []

    def row(label: str, s: Stat | None, role: str) -> list[str]:
        ref = paper.get(role)
        ours = format_stat(s, percent=True)
        diff = "" if ref is None or s is None or math.isnan(s.mean) else f"{100 * s.mean - ref:+.2f}"
        return [label, ours, "" if ref is None else f"{ref:.2f}", diff]

    for variant, by_metric in stats.items():
        role = roles.get(variant, variant)
        rows.append(row(f"{variant} ({role})", by_metric.get(key), role))
        if role == "ce" and (ph := by_metric.get(f"{prefix}posthoc_tau1/balanced_acc")) is not None:
            rows.append(row(f"{variant} + post-hoc tau=1", ph, POSTHOC))
    return header, rows
