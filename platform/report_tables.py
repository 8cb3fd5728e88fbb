"""The arithmetic of a report, as pure functions: one row per trial in, tables, Pareto fronts and a verdict out.

Nothing here reads files or talks to MLflow (``platform.report`` does the I/O). Inputs are pandas frames with one
row per finished trial: a ``variant`` column, a ``seed`` column and one column per metric (the trial's value at its
final evaluated epoch, never its best epoch). Means are over seeds; stds are sample stds (ddof = 1), so a single
seed has no std.

Papers' figures: Menon et al. 2021, "Long-tail learning via logit adjustment", Table 3
(https://arxiv.org/abs/2007.07314), balanced test accuracy in %.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

VARIANT, SEED = "variant", "seed"

# Roles of ablation variants, found from the loss each variant trains (platform.report maps variant -> loss).
ROLE_OF_LOSS = {
    "cross_entropy": "ce",
    "logit_adjusted": "la",
    "embedding_margin": "embedding_only",
    "elm": "elm",
}
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


@dataclass(frozen=True)
class Column:
    """A metric column of a report table: the key under the split prefix, and its header (with its unit)."""

    key: str
    label: str
    percent: bool = False  # a fraction shown x100, in %


# One unit per table: every table's measured columns share one unit, named in each header.
ACCURACY_COLUMNS = (  # %
    Column("balanced_acc", "balanced acc (%)", True),
    Column("acc", "acc (%)", True),
    Column("acc_many", "Many (%)", True),
    Column("acc_medium", "Medium (%)", True),
    Column("acc_few", "Few (%)", True),
    Column("ece", "ECE (%)", True),
    Column("logit_margin/frac_negative", "negative margin (%)", True),  # test examples with f_y < max f_y'
)
MARGIN_COLUMNS = (  # logits
    Column("logit_margin/mean", "margin mean (logits)"),
    Column("logit_margin/std", "margin std (logits)"),
    Column("logit_margin/class_mean_std", "class-mean std (logits)"),
)
# Where a run's embedding geometry is, first found first: the L2-normalised projections the ELM loss shapes, the
# backbone features (elm.metrics.geometry, pairwise spread: unbiased whatever the class size), then the in-sample
# ``embedding/`` keys of runs before it. (key prefix under the split, spread statistic, what the space is)
GEOMETRY_SPACES = (
    ("emb_proj/", "spread_pairwise", "projections"),
    ("emb_backbone/", "spread_pairwise", "backbone features"),
    ("embedding/", "spread", "embeddings"),
)


def geometry_space(metrics: Sequence[str], prefix: str) -> tuple[str, str, str]:
    """The ``GEOMETRY_SPACES`` entry of the first space any of ``metrics`` (``split/...`` names) reports."""
    for space in GEOMETRY_SPACES:
        if any(m.startswith(prefix + space[0]) for m in metrics):
            return space
    return GEOMETRY_SPACES[-1]


def geometry_columns(metrics: Sequence[str], prefix: str) -> tuple[Column, ...]:
    """Spread per group and the smallest class separation, all cosine distances (1 - cos)."""
    space, spread, _ = geometry_space(metrics, prefix)
    return (*(Column(f"{space}{spread}_{g}", f"spread {g.capitalize()} (1 - cos)") for g in ("many", "medium", "few")),
            Column(f"{space}separation_min", "separation min (1 - cos)"))


def is_percent_metric(metric: str) -> bool:
    """Whether a ``split/name`` metric is an accuracy (a fraction that reports show in %): ``acc``,
    ``balanced_acc``, ``acc_few``, ``posthoc_tau1/balanced_acc`` ..."""
    name = metric.rsplit("/", 1)[-1]
    return name in ("acc", "balanced_acc") or name.startswith("acc_")


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


def posthoc_columns(taus: Sequence[str]) -> tuple[Column, ...]:
    """Balanced and Few accuracy after post-hoc adjustment at each tau (tau as written in the key, e.g. '1.5')."""
    cols: list[Column] = []
    for t in taus:
        cols.append(Column(f"posthoc_tau{t}/balanced_acc", f"tau={t} balanced (%)", True))
        cols.append(Column(f"posthoc_tau{t}/acc_few", f"tau={t} Few (%)", True))
    return tuple(cols)


def calibration_columns(taus: Sequence[str]) -> tuple[Column, ...]:
    """ECE overall and per Many / Medium / Few (examples grouped by true class), before post-hoc adjustment and at
    each tau (``elm.metrics.calibration_by_group``), in %."""
    cols = [Column("ece", "ECE (%)", True)] + [Column(f"ece_{g}", f"ECE {g.capitalize()} (%)", True)
                                               for g in ("many", "medium", "few")]
    for t in taus:
        cols += [Column(f"posthoc_tau{t}/ece", f"tau={t} ECE (%)", True)]
        cols += [Column(f"posthoc_tau{t}/ece_{g}", f"tau={t} ECE {g.capitalize()} (%)", True)
                 for g in ("many", "medium", "few")]
    return tuple(cols)


def posthoc_taus(columns: Sequence[str], prefix: str) -> list[str]:
    """The taus present among metric columns ``{prefix}posthoc_tau{t}/balanced_acc``, sorted numerically."""
    head, tail = f"{prefix}posthoc_tau", "/balanced_acc"
    taus = [c[len(head) : -len(tail)] for c in columns if c.startswith(head) and c.endswith(tail)]
    return sorted(taus, key=float)


@dataclass(frozen=True)
class Stat:
    """Mean and sample std over seeds of one metric of one variant; std is nan for a single seed."""

    mean: float
    std: float
    n: int


def mean_std(values: Sequence[float]) -> Stat:
    """Mean and sample std (ddof = 1) of the finite ``values``; nan mean for none, nan std for one."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(float(x))], dtype=float)
    if v.size == 0:
        return Stat(math.nan, math.nan, 0)
    return Stat(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size))


def aggregate(frame: pd.DataFrame, metrics: Sequence[str], by: str = VARIANT) -> dict[str, dict[str, Stat]]:
    """``{variant: {metric: Stat over seeds}}`` in the frame's order of first appearance; missing metrics skipped.

    Args:
        frame: one row per trial, with column ``by`` and the metric columns (final-epoch values).
        metrics: metric column names.
    """
    out: dict[str, dict[str, Stat]] = {}
    for variant in pd.unique(frame[by]):
        rows = frame[frame[by] == variant]
        out[str(variant)] = {m: mean_std(rows[m].tolist()) for m in metrics if m in frame.columns}
    return out


def format_stat(s: Stat | None, percent: bool = False, digits: int | None = None) -> str:
    """'mean ± std' (x100 for percentages); '—' when undefined; just the mean for one seed."""
    if s is None or s.n == 0 or math.isnan(s.mean):
        return "—"
    scale = 100.0 if percent else 1.0
    d = digits if digits is not None else (2 if percent else 3)
    if math.isnan(s.std):
        return f"{scale * s.mean:.{d}f}"
    return f"{scale * s.mean:.{d}f} ± {scale * s.std:.{d}f}"


def stat_table(
    stats: Mapping[str, Mapping[str, Stat]], columns: Sequence[Column], prefix: str
) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per variant) of 'mean ± std' cells, with the number of seeds."""
    header = ["variant", "seeds", *[c.label for c in columns]]
    rows = []
    for variant, by_metric in stats.items():
        n = max((s.n for s in by_metric.values()), default=0)
        rows.append([variant, str(n), *[format_stat(by_metric.get(prefix + c.key), c.percent) for c in columns]])
    return header, rows


def paper_rows(
    stats: Mapping[str, Mapping[str, Stat]], roles: Mapping[str, str], dataset: str, prefix: str,
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
    header = ["method", "ours: balanced acc (%)", f"paper (%): {PAPER_SOURCE}" + (f"; {note}" if note else ""),
              "ours - paper (%-pts)" + ("" if comparable or not note else ", not comparable")]
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


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of the points no other point dominates when maximising both x and y, ordered by increasing x.

    A point dominates another if it is >= in both coordinates and > in at least one. Ties (equal points) are
    all kept. Points with a nan coordinate are never on the front.
    """
    pts = [(float(a), float(b)) for a, b in zip(x, y)]
    front = []
    for i, (xi, yi) in enumerate(pts):
        if math.isnan(xi) or math.isnan(yi):
            continue
        dominated = any(
            xj >= xi and yj >= yi and (xj > xi or yj > yi)
            for j, (xj, yj) in enumerate(pts)
            if j != i and not (math.isnan(xj) or math.isnan(yj))
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (pts[i][0], -pts[i][1]))


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
    claim: str, left: tuple[str, Stat | None], right: tuple[str, Stat | None], strict: bool, unit: str = "",
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


def verdict(
    stats: Mapping[str, Mapping[str, Stat]], roles: Mapping[str, str], prefix: str
) -> list[Comparison]:
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
    space, spread, space_name = (backbone, "spread_pairwise", "backbone") if backbone else geometry_space(
        metrics, prefix)
    spread = f"{space}{spread}"
    # the rarest group the data has: CIFAR-10-LT at rho=100 has no class under 20 images, so its tail is 'medium'
    tail = next((g for g in ("few", "medium")
                 if get("la", f"acc_{g}") is not None or get("la", f"{spread}_{g}") is not None), "few")
    ph = f"{ce} + post-hoc tau=1"
    out = [
        compare("CE < post-hoc (tau=1 on CE)", (ce, get("ce", ba)),
                (ph, get("ce", "posthoc_tau1/balanced_acc")), strict=True, unit="pts", source=LA_PAPER),
        compare("post-hoc <= LA loss", (ph, get("ce", "posthoc_tau1/balanced_acc")),
                (la, get("la", ba)), strict=False, unit="pts", source=LA_PAPER),
        compare("LA loss <= ELM (balanced accuracy)", (la, get("la", ba)), (elm, get("elm", ba)), strict=False,
                unit="pts", source=ELM_PAPER),
    ]
    for g in ("medium", "few"):
        if get("la", f"acc_{g}") is not None:
            out.append(compare(f"LA loss < ELM on {g.capitalize()} classes", (la, get("la", f"acc_{g}")),
                               (elm, get("elm", f"acc_{g}")), strict=True, unit="pts", source=ELM_PAPER))
    out += [
        # 'ELM lower than LA' is 'ELM < LA' read as left=ELM, right=LA
        compare(f"ELM has lower {tail.capitalize()}-group embedding spread than LA ({space_name})",
                (elm, get("elm", f"{spread}_{tail}")), (la, get("la", f"{spread}_{tail}")), strict=True,
                source=ELM_PAPER),
        compare("ELM's per-class mean logit margins vary less than LA's (their std over classes / the examples' "
                "margin std, scale-free)", (elm, get("elm", CLASS_MEAN_RATIO)), (la, get("la", CLASS_MEAN_RATIO)),
                strict=True, source=HYPOTHESIS),
    ]
    return out


GROUPS = ("many", "medium", "few")


def geometry_tables(
    stats: Mapping[str, Mapping[str, Stat]], prefix: str
) -> list[tuple[str, list[str], list[list[str]]]]:
    """Embedding-geometry tables, one unit each: per feature space (the projections the ELM loss shapes first,
    then the backbone), spread (1 - cos, pairwise estimator) and the within-class variance ratio (unitless), per
    group, on the evaluation split and on the fixed training sample; then the Spearman correlation of class
    tightness with log class size. Returns (title, header, rows) for the spaces the runs report."""
    metrics = {k for by in stats.values() for k in by}
    spaces = [(s, name) for s, name in (("emb_proj", "projections (where the ELM loss acts)"),
                                        ("emb_backbone", "backbone features"))
              if any(m.startswith(f"{prefix}{s}/") or m.startswith(f"train/{s}/") for m in metrics)]
    split = prefix.rstrip("/")
    out: list[tuple[str, list[str], list[list[str]]]] = []

    def table_of(keys: list[tuple[str, str]], digits: int = 3) -> tuple[list[str], list[list[str]]]:
        present = [(k, label) for k, label in keys if k in metrics]
        header = ["variant", "seeds", *[label for _, label in present]]
        rows = [[v, str(max((s.n for s in by.values()), default=0)),
                 *[format_stat(by.get(k), digits=digits) for k, _ in present]] for v, by in stats.items()]
        return header, rows

    for s, name in spaces:
        for stat, unit in (("spread_pairwise", "1 - cos"), ("var_ratio", "tr S_c / tr S_T, unitless")):
            keys = [(f"{where}/{s}/{stat}_{g}", f"{where} {g.capitalize()}") for where in (split, "train")
                    for g in GROUPS]
            h, r = table_of(keys)
            if len(h) > 2:
                out.append((f"{'Spread' if stat.startswith('spread') else 'Within-class variance ratio'} in the "
                            f"{name} ({unit}; mean ± std over seeds)", h, r))
    keys = [(f"{where}/{s}/{stat}_logsize_spearman", f"{where} {s.removeprefix('emb_')} {stat}")
            for s, _ in spaces for where in (split, "train") for stat in ("spread", "var_ratio")]
    h, r = table_of(keys, digits=2)
    if len(h) > 2:
        out.append(("Spearman correlation of class tightness with log class size (unitless; negative: larger "
                    "classes are tighter, positive: smaller classes are tighter)", h, r))
    return out


ANCHOR_COLUMNS = (
    *(Column(f"emb_anchor_pos_frac_{g}", f"{g.capitalize()} anchors with a positive (%)", True) for g in GROUPS),
    *(Column(f"emb_anchor_share_{g}", f"{g.capitalize()} share of contributing anchors (%)", True) for g in GROUPS),
)


def per_class_mean(rows: pd.DataFrame, value: str) -> pd.DataFrame:
    """Per-class ``value`` averaged over seeds, per variant.

    Args:
        rows: one row per (variant, seed, class), with columns variant, class, train_count, group and ``value``.

    Returns:
        Columns variant, class, train_count, group, ``value`` (mean over seeds), n (seeds), sorted by variant
        (order of first appearance) then decreasing train_count.
    """
    order = {v: i for i, v in enumerate(pd.unique(rows[VARIANT]))}
    g = rows.groupby([VARIANT, "class"], sort=False).agg(
        train_count=("train_count", "first"), group=("group", "first"),
        **{value: (value, "mean")}, n=(value, "count"),
    ).reset_index()
    g["_order"] = g[VARIANT].map(order)
    g = g.sort_values(["_order", "train_count", "class"], ascending=[True, False, True])
    return g.drop(columns="_order").reset_index(drop=True)


def group_quantiles(
    stats: Mapping[str, Mapping[str, Stat]], prefix: str, groups: Sequence[str] = ("many", "medium", "few")
) -> dict[str, dict[str, dict[str, float]]]:
    """``{variant: {group: {q10, q50, q90, mean}}}`` of per-example logit margins, each averaged over seeds.

    Groups a variant does not report (no class in the group) are left out.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for variant, by_metric in stats.items():
        out[variant] = {}
        for g in groups:
            vals = {q: by_metric.get(f"{prefix}logit_margin/{q}_{g}") for q in ("q10", "q50", "q90", "mean")}
            if all(v is not None and v.n > 0 for v in vals.values()):
                out[variant][g] = {q: v.mean for q, v in vals.items() if v is not None}
    return out


def binned_by_size(per_class: pd.DataFrame, value: str, bins: int) -> pd.DataFrame:
    """Mean of a per-class ``value`` in ``bins`` log-spaced bins of training-class size, per variant.

    Args:
        per_class: ``per_class_mean`` output.

    Returns:
        Columns variant, train_count (geometric mean of the bin's class sizes), ``value`` (mean over the bin's
        classes), classes (count); empty bins dropped.
    """
    sizes = per_class["train_count"].to_numpy(dtype=float)
    if bins < 1 or sizes.size == 0 or sizes.min() <= 0:
        raise ValueError(f"need bins >= 1 and positive class sizes; got bins={bins}, sizes min {sizes.min(initial=0)}")
    edges = np.geomspace(sizes.min(), sizes.max(), bins + 1)  # (bins + 1,); the inner edges split the classes
    frame = per_class.assign(_bin=np.digitize(sizes, edges[1:-1], right=False), _log=np.log(sizes))
    g = frame.groupby([VARIANT, "_bin"], sort=False).agg(
        _log=("_log", "mean"), **{value: (value, "mean")}, classes=(value, "count")).reset_index()
    g["train_count"] = np.exp(g["_log"])
    order = {v: i for i, v in enumerate(pd.unique(per_class[VARIANT]))}
    g = g.assign(_order=g[VARIANT].map(order)).sort_values(["_order", "train_count"])
    return g[[VARIANT, "train_count", value, "classes"]].reset_index(drop=True)
