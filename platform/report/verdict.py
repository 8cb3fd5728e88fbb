"""The verdict of an ablation: the papers' claims (and the project's hypothesis) checked on mean values over seeds,
each gap judged against seed noise. Pure functions of ``platform.report.tables.aggregate`` output.

Claims: Menon et al. 2021 (logit adjustment, https://arxiv.org/abs/2007.07314) and the abstract of Jitkrittum et al.
2022 (ELM, https://arxiv.org/abs/2204.13208).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

from platform.report.tables import VARIANT, Stat, geometry_space

# Roles of ablation variants, found from the loss each variant trains (``roles_of``).
ROLE_OF_LOSS = {
    "cross_entropy": "ce",
    "logit_adjusted": "la",
    "embedding_margin": "embedding_only",
    "elm": "elm",
}


@dataclass(frozen=True)
class Comparison:
    """One claimed inequality between two mean metrics, checked against seed noise.

    ``holds`` is None when either side is missing. ``beyond_noise`` is whether |difference| exceeds the larger of
    the two seed stds (None when neither side has a std, i.e. a single seed each).
    """

    claim: str
    left: str
    right: str
    difference: float  # right - left, in the metric's units
    noise: float  # max of the two sample stds
    holds: bool | None
    beyond_noise: bool | None
    unit: str = ""  # 'pts': a fraction shown as percentage points
    source: str = ""  # where the claim comes from: a paper, or the project's own hypothesis

    def sentence(self) -> str:
        """e.g. 'LA loss <= ELM: holds, within seed noise (elm - la = +0.40 pts; larger seed std 0.90 pts).'"""
        if self.holds is None:
            return f"{self.claim}: not available ({self.left} or {self.right} missing)."
        verdict = "holds" if self.holds else "does NOT hold"
        if self.beyond_noise is None:
            noise = "seed noise unknown (one seed per side)"
        else:
            noise = "beyond seed noise" if self.beyond_noise else "within seed noise"
        diff = f"`{self.right}` - `{self.left}` = {self._fmt(self.difference, sign=True)}"
        std = "" if math.isnan(self.noise) else f"; larger seed std {self._fmt(self.noise)}"
        return f"{self.claim}: {verdict}, {noise} ({diff}{std})."

    def _fmt(self, v: float, sign: bool = False) -> str:
        s = "+" if sign else ""
        return f"{100 * v:{s}.2f} pts" if self.unit == "pts" else f"{v:{s}.4f}"


def compare(
    claim: str,
    left: tuple[str, Stat | None],
    right: tuple[str, Stat | None],
    strict: bool,
    unit: str = "",
    source: str = "",
) -> Comparison:
    """Check ``left < right`` (strict) or ``left <= right`` on means, and whether the gap beats seed noise."""
    (ln, ls), (rn, rs) = left, right
    if ls is None or rs is None or ls.n == 0 or rs.n == 0 or math.isnan(ls.mean) or math.isnan(rs.mean):
        return Comparison(claim, ln, rn, math.nan, math.nan, None, None, unit, source)
    d = rs.mean - ls.mean
    stds = [s for s in (ls.std, rs.std) if not math.isnan(s)]
    noise = max(stds) if stds else math.nan
    holds = d > 0 if strict else d >= 0
    beyond = None if not stds else abs(d) > noise
    return Comparison(claim, ln, rn, d, noise, holds, beyond, unit, source)


# Where each claim of the verdict comes from.
LA_PAPER = "LA paper (Menon et al. 2021)"
ELM_PAPER = "ELM paper, abstract (Jitkrittum et al. 2022)"
HYPOTHESIS = "project hypothesis (not in either paper)"
CLASS_MEAN_RATIO = "logit_margin/class_mean_std_ratio"  # derived per trial: class_mean_std / std (scale-free)


def with_derived(trials: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """``trials`` plus scale-free derived metrics: ``<prefix>logit_margin/class_mean_std_ratio``, the std over
    classes of the per-class mean logit margin divided by the std of all examples' margins: how much of the margins'
    spread lies between classes (both in logits, so any logit scale gives the same ratio; a ratio to the mean margin
    would explode where the mean is near 0)."""
    between, overall = prefix + "logit_margin/class_mean_std", prefix + "logit_margin/std"
    if between not in trials or overall not in trials:
        return trials
    return trials.assign(**{prefix + CLASS_MEAN_RATIO: trials[between] / trials[overall]})


def verdict(stats: Mapping[str, Mapping[str, Stat]], roles: Mapping[str, str], prefix: str) -> list[Comparison]:
    """The ablation's claims, checked on mean values over seeds, each labelled with its source.

    - LA paper (Menon et al. 2021): CE < post-hoc (tau=1 on CE) <= LA loss in balanced accuracy.
    - ELM paper, abstract (Jitkrittum et al. 2022): ELM at least matches LA overall; ELM beats LA on the torso and
      tail (Medium, and Few where the data has it); tighter tail-class embeddings than LA. Embedding tightness is
      compared in the backbone space (pairwise spread, ``elm.metrics.geometry``): LA and CE never train the
      projection head, so its geometry says nothing about them.
    - Project hypothesis: ELM spreads its per-class logit margins more evenly than LA, measured scale-free
      (``CLASS_MEAN_RATIO``).

    Args:
        stats: ``aggregate`` output (of ``with_derived`` trials).
        roles: variant -> role ('ce', 'la', 'elm', ...); the first variant of each role is used.
        prefix: metric prefix, e.g. 'test/'.
    """
    by_role: dict[str, Mapping[str, Stat]] = {}
    names: dict[str, str] = {}
    for variant, role in roles.items():
        if variant in stats and role not in by_role:
            by_role[role], names[role] = stats[variant], variant

    def get(role: str, key: str) -> Stat | None:
        return by_role.get(role, {}).get(prefix + key)

    ce, la, elm = names.get("ce", "ce"), names.get("la", "la"), names.get("elm", "elm")
    ba = "balanced_acc"
    metrics = [k for by in stats.values() for k in by]
    backbone = "emb_backbone/" if any(m.startswith(prefix + "emb_backbone/") for m in metrics) else None
    space, spread, space_name = (
        (backbone, "spread_pairwise", "backbone") if backbone else geometry_space(metrics, prefix)
    )
    spread = f"{space}{spread}"
    # the rarest group the data has: CIFAR-10-LT at rho=100 has no class under 20 images, so its tail is 'medium'
    tail = next(
        (g for g in ("few", "medium") if get("la", f"acc_{g}") is not None or get("la", f"{spread}_{g}") is not None),
        "few",
    )
    ph = f"{ce} + post-hoc tau=1"
    out = [
        compare(
            "CE < post-hoc (tau=1 on CE)",
            (ce, get("ce", ba)),
            (ph, get("ce", "posthoc_tau1/balanced_acc")),
            strict=True,
            unit="pts",
            source=LA_PAPER,
        ),
        compare(
            "post-hoc <= LA loss",
            (ph, get("ce", "posthoc_tau1/balanced_acc")),
            (la, get("la", ba)),
            strict=False,
            unit="pts",
            source=LA_PAPER,
        ),
        compare(
            "LA loss <= ELM (balanced accuracy)",
            (la, get("la", ba)),
            (elm, get("elm", ba)),
            strict=False,
            unit="pts",
            source=ELM_PAPER,
        ),
    ]
    for g in ("medium", "few"):
        if get("la", f"acc_{g}") is not None:
            out.append(
                compare(
                    f"LA loss < ELM on {g.capitalize()} classes",
                    (la, get("la", f"acc_{g}")),
                    (elm, get("elm", f"acc_{g}")),
                    strict=True,
                    unit="pts",
                    source=ELM_PAPER,
                )
            )
    out += [
        # 'ELM lower than LA' is 'ELM < LA' read as left=ELM, right=LA
        compare(
            f"ELM has lower {tail.capitalize()}-group embedding spread than LA ({space_name})",
            (elm, get("elm", f"{spread}_{tail}")),
            (la, get("la", f"{spread}_{tail}")),
            strict=True,
            source=ELM_PAPER,
        ),
        compare(
            "ELM's per-class mean logit margins vary less than LA's (their std over classes / the examples' "
            "margin std, scale-free)",
            (elm, get("elm", CLASS_MEAN_RATIO)),
            (la, get("la", CLASS_MEAN_RATIO)),
            strict=True,
            source=HYPOTHESIS,
        ),
    ]
    return out


def roles_of(trials: pd.DataFrame) -> dict[str, str]:
    """variant -> role ('ce', 'la', 'embedding_only', 'elm', or the loss name) from the loss each variant trains.

    Args:
        trials: one row per trial with ``variant`` and ``loss`` columns.
    """
    roles: dict[str, str] = {}
    for variant, loss in zip(trials[VARIANT], trials["loss"]):
        roles.setdefault(str(variant), ROLE_OF_LOSS.get(str(loss), str(loss) or str(variant)))
    return roles
