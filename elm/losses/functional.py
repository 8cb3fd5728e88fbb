"""Pure loss maths for long-tail learning: priors, logit adjustment, pairwise margins, embedding margins.

Papers:
    Menon et al. 2021, "Long-tail learning via logit adjustment", https://arxiv.org/abs/2007.07314
    Cao et al. 2019, "Learning imbalanced datasets with label-distribution-aware margin loss",
        https://arxiv.org/abs/1906.07413
    Khosla et al. 2020, "Supervised contrastive learning", https://arxiv.org/abs/2004.11362
    Jitkrittum et al. 2022, "ELM: Embedding and logit margins for long-tail learning",
        https://arxiv.org/abs/2204.13208

Every function computes in float32 (inputs are cast with ``.float()``) so that it is safe under bf16
autocast; every loss is a plain mean over the batch unless its docstring says otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MARGIN_SCHEDULES = ("log_prior", "inv_quarter", "uniform", "none")
SUPCON_DENOMINATORS = ("negatives", "all")


def class_log_prior(class_counts: Tensor) -> Tensor:
    """Log of the empirical class prior, log pi_y = log(n_y / sum_y' n_y').

    Args:
        class_counts: (C,) training examples per class; every entry must be positive.
    Returns:
        (C,) float32 log prior.
    Raises:
        ValueError: if ``class_counts`` is not 1-D, is empty, or has a zero or negative entry.
    """
    if class_counts.ndim != 1 or class_counts.numel() == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D tensor, got shape {tuple(class_counts.shape)}")
    if bool((class_counts <= 0).any()):
        empty = torch.nonzero(class_counts <= 0).flatten().tolist()
        raise ValueError(f"class_counts must be positive; classes {empty} have no training examples")
    counts = class_counts.to(torch.float64)  # exact sums for large datasets
    return (counts / counts.sum()).log().to(torch.float32)


def _check_logits(logits: Tensor, num_classes: int, key: str) -> None:
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must have shape (B, {num_classes}) to match {key}, got {tuple(logits.shape)}")


def adjusted_cross_entropy(logits: Tensor, targets: Tensor, log_prior: Tensor, tau: float) -> Tensor:
    """Mean cross-entropy on prior-shifted logits, CE(f(x) + tau * log pi, y) (Menon et al. 2021, eq. 10).

    The form modules use: they hold ``log_prior`` as a buffer, so no validation runs per step.

    Args:
        logits: (B, C) class scores f(x).
        targets: (B,) int64 labels.
        log_prior: (C,) log pi, e.g. from ``class_log_prior``.
        tau: temperature of the adjustment; 0 gives plain cross-entropy.
    Returns:
        Scalar float32 mean loss.
    """
    return F.cross_entropy(logits.float() + tau * log_prior.float(), targets)


def logit_adjusted_loss(logits: Tensor, targets: Tensor, class_counts: Tensor, tau: float) -> Tensor:
    """Logit-adjusted softmax cross-entropy, mean_i CE(f(x_i) + tau * log pi, y_i) (Menon et al. 2021, eq. 10).

    Args:
        logits: (B, C) class scores.
        targets: (B,) int64 labels.
        class_counts: (C,) training examples per class (positive).
        tau: temperature of the adjustment; 0 gives plain cross-entropy, 1 gives balanced softmax.
    Returns:
        Scalar float32 mean loss.
    """
    log_prior = class_log_prior(class_counts).to(logits.device)
    _check_logits(logits, log_prior.numel(), "class_counts")
    return adjusted_cross_entropy(logits, targets, log_prior, tau)


def posthoc_adjust(logits: Tensor, class_counts: Tensor, tau: float) -> Tensor:
    """Post-hoc logit adjustment, f(x) - tau * log pi (Menon et al. 2021, eq. 9); predict with its argmax.

    With tau = 1 and f(x) the Bayes posterior logits log p(y|x), the argmax is the balanced-error Bayes rule
    argmax_y p(x|y).

    Args:
        logits: (B, C) class scores of a model trained with plain cross-entropy.
        class_counts: (C,) training examples per class (positive).
        tau: strength of the adjustment.
    Returns:
        (B, C) float32 adjusted scores.
    """
    log_prior = class_log_prior(class_counts).to(logits.device)
    _check_logits(logits, log_prior.numel(), "class_counts")
    return logits.float() - tau * log_prior


def pairwise_margin_loss(logits: Tensor, targets: Tensor, alpha: Tensor, delta: Tensor) -> Tensor:
    """Pairwise margin loss of Menon et al. 2021, eq. 11, averaged over the batch.

    l(y, f) = alpha_y * log(1 + sum_{y' != y} exp(delta_{y y'}) * exp(f_y' - f_y)).
    Computed as alpha_y * logsumexp_{y'}(a_{y'}) with a_y = 0 and a_{y'} = delta_{y y'} + f_y' - f_y, which is
    stable for any logit scale. The batch loss is the plain mean (1/B) sum_i l(y_i, f(x_i)); unlike
    ``F.cross_entropy(weight=...)`` it is not divided by the sum of the weights alpha_{y_i}.

    Members: alpha = 1, delta = 0 is cross-entropy; alpha = 1, delta_{yy'} = tau * log(pi_y' / pi_y) is the
    logit-adjusted loss (eq. 10); alpha_y = pi_y^(tau - 1) with the same delta is the weighted logit-adjusted loss.

    Args:
        logits: (B, C) class scores f(x).
        targets: (B,) int64 labels.
        alpha: (C,) per-class weights alpha_y.
        delta: (C, C) pairwise margins delta_{y y'}; the diagonal is ignored.
    Returns:
        Scalar float32 mean loss.
    """
    num_classes = alpha.numel()
    if alpha.ndim != 1 or delta.shape != (num_classes, num_classes):
        raise ValueError(f"alpha must be (C,) and delta (C, C), got {tuple(alpha.shape)} and {tuple(delta.shape)}")
    _check_logits(logits, num_classes, "alpha")
    f = logits.float()
    target_logit = f.gather(1, targets[:, None])  # (B, 1)
    a = delta.float()[targets] + f - target_logit  # (B, C)
    is_target = F.one_hot(targets, num_classes).bool()
    a = a.masked_fill(is_target, 0.0)  # the "1 +" term
    per_example = alpha.float()[targets] * torch.logsumexp(a, dim=1)  # (B,)
    return per_example.mean()


def prior_power_weights(log_prior: Tensor, alpha_power: float) -> Tensor:
    """Per-class weights alpha_y = pi_y^p / sum_y' pi_y'^(p + 1) for the pairwise loss (Menon et al. 2021, eq. 11).

    The normalisation makes sum_y pi_y alpha_y = 1: a training example has expected weight 1, so the loss keeps
    the scale of cross-entropy for every power p; p = 0 gives alpha = 1.

    Args:
        log_prior: (C,) log pi.
        alpha_power: the power p.
    Returns:
        (C,) float32 weights.
    """
    lp = log_prior.to(torch.float64)
    return torch.exp(alpha_power * lp - torch.logsumexp((alpha_power + 1.0) * lp, dim=0)).to(torch.float32)


def prior_ratio_margins(log_prior: Tensor, tau: float) -> Tensor:
    """Pairwise margins delta_{y y'} = tau * log(pi_y' / pi_y) of logit adjustment in eq. 11 form (Menon et al. 2021).

    Args:
        log_prior: (C,) log pi.
        tau: adjustment strength.
    Returns:
        (C, C) float32 margins, row y = true class, column y' = competitor; zero diagonal.
    """
    return (tau * (log_prior[None, :] - log_prior[:, None])).to(torch.float32)


def ldam_margins(class_counts: Tensor, max_margin: float) -> Tensor:
    """LDAM margins Delta_y = C / n_y^(1/4) (Cao et al. 2019), with C chosen so the largest is ``max_margin``.

    Args:
        class_counts: (C,) training examples per class (positive).
        max_margin: the margin of the rarest class (C in Cao et al.).
    Returns:
        (C,) float32 margins, largest for the rarest class.
    """
    if max_margin < 0:
        raise ValueError(f"max_margin={max_margin!r} must be >= 0")
    class_log_prior(class_counts)  # validates shape and positivity
    m = class_counts.to(torch.float64).pow(-0.25)
    return (m * (max_margin / m.max())).to(torch.float32)


def ldam_loss(logits: Tensor, targets: Tensor, margins: Tensor, scale: float) -> Tensor:
    """LDAM loss with logit scale s, mean_i CE(s * (f(x_i) - Delta_{y_i} e_{y_i}), y_i) (Cao et al. 2019).

    The margin is subtracted from the target logit only, then all logits are multiplied by s. Cao et al. use
    cosine logits (normalised features and weights) with s = 30; with unnormalised logits s acts as an inverse
    softmax temperature. This is the pairwise loss (eq. 11 of Menon et al.) on logits s*f with alpha = 1 and
    delta_{y y'} = s * Delta_y.

    Args:
        logits: (B, C) class scores f(x).
        targets: (B,) int64 labels.
        margins: (C,) margins Delta_y, e.g. from ``ldam_margins``.
        scale: the logit scale s.
    Returns:
        Scalar float32 mean loss.
    """
    _check_logits(logits, margins.numel(), "margins")
    f = logits.float()
    shift = F.one_hot(targets, margins.numel()).float() * margins.float()[targets, None]  # (B, C)
    return F.cross_entropy(scale * (f - shift), targets)


def embedding_margins(class_counts: Tensor, schedule: str, scale: float) -> Tensor:
    """Class-dependent embedding margins m_y for ``supcon_margin_loss``; larger for rarer classes.

    Schedules (pi = class prior, n = class counts):
        "log_prior":   m_y = scale * (log pi_max - log pi_y) / (log pi_max - log pi_min): 0 for the most frequent
                       class, ``scale`` for the rarest; all zeros when every count is equal.
        "inv_quarter": m_y = scale * n_y^(-1/4) / max_y' n_y'^(-1/4), the LDAM shape (Cao et al. 2019).
        "uniform":     m_y = scale.
        "none":        m_y = 0.

    Args:
        class_counts: (C,) training examples per class (positive).
        schedule: one of ``MARGIN_SCHEDULES``.
        scale: the largest margin (cosine-similarity units, so at most 2 is meaningful).
    Returns:
        (C,) float32 margins.
    """
    if schedule not in MARGIN_SCHEDULES:
        raise ValueError(f"margin_schedule={schedule!r} is not allowed; choose one of {list(MARGIN_SCHEDULES)}")
    if scale < 0:
        raise ValueError(f"margin={scale!r} must be >= 0")
    log_prior = class_log_prior(class_counts).to(torch.float64)
    if schedule == "log_prior":
        spread = log_prior.max() - log_prior.min()
        if spread == 0:
            return torch.zeros_like(log_prior, dtype=torch.float32)
        return (scale * (log_prior.max() - log_prior) / spread).to(torch.float32)
    if schedule == "inv_quarter":
        return ldam_margins(class_counts, scale)
    if schedule == "uniform":
        return torch.full_like(log_prior, scale, dtype=torch.float32)
    return torch.zeros_like(log_prior, dtype=torch.float32)


def _exclusive_logsumexp(x: Tensor, fill: float) -> Tensor:
    """Leave-one-out logsumexp along the last dim: out[..., j] = log sum_{k != j} exp(x[..., k]).

    Built from prefix and suffix ``logcumsumexp`` so nothing is subtracted (no cancellation). ``fill`` stands
    for an empty sum; it must be finite so that masked entries never produce NaN gradients.
    """
    pad = x.new_full(x.shape[:-1] + (1,), fill)
    prefix = torch.cat([pad, torch.logcumsumexp(x, dim=-1)[..., :-1]], dim=-1)  # sum over k < j
    suffix = torch.logcumsumexp(x.flip(-1), dim=-1).flip(-1)
    suffix = torch.cat([suffix[..., 1:], pad], dim=-1)  # sum over k > j
    return torch.logaddexp(prefix, suffix)


def supcon_margin_anchor_losses(
    z: Tensor,
    targets: Tensor,
    margins: Tensor,
    temperature: float,
    denominator: str = "negatives",
    anchors: slice | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-anchor losses of ``supcon_margin_loss`` for the anchors ``z[anchors]`` against every row of ``z``.

    Under DDP, ``z`` is the all-gathered global batch and ``anchors`` this rank's rows, so each rank computes its
    share of the global-batch loss (``elm.losses.elm.ElmLoss`` combines the shares).

    Args:
        z: (N, D) embeddings; normalised here.
        targets: (N,) int64 labels.
        margins: (C,) margin m_y per class, cosine-similarity units.
        temperature: T > 0.
        denominator: "negatives" or "all" (see ``supcon_margin_loss``).
        anchors: the rows that act as anchors (default all).
    Returns:
        anchor_loss: (A,) float32 mean over the anchor's positives P(i) of l_ip (0 where P(i) is empty).
        has_positive: (A,) bool, P(i) non-empty.
    Raises:
        ValueError: bad temperature, denominator or shapes.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature!r} must be > 0")
    if denominator not in SUPCON_DENOMINATORS:
        raise ValueError(f"denominator={denominator!r} is not allowed; choose one of {list(SUPCON_DENOMINATORS)}")
    if z.ndim != 2 or targets.shape != z.shape[:1]:
        raise ValueError(f"z must be (B, D) and targets (B,), got {tuple(z.shape)} and {tuple(targets.shape)}")
    rows = anchors if anchors is not None else slice(0, len(targets))
    with torch.autocast(device_type=z.device.type, enabled=False):  # the similarity matmul must stay float32
        zn = F.normalize(z.float(), dim=1)  # (N, D), L2-normalised
        logits = zn[rows] @ zn.T / temperature  # (A, N), s_ij / T
    empty = torch.finfo(logits.dtype).min  # finite stand-in for log 0: keeps masked gradients at exactly 0
    index = torch.arange(len(targets), device=z.device)
    self_mask = index[rows][:, None] == index[None, :]  # (A, N)
    anchor_targets = targets[rows]
    same = anchor_targets[:, None] == targets[None, :]
    positive = same & ~self_mask  # (A, N)
    anchor_margin = margins.float()[anchor_targets][:, None] / temperature  # (A, 1), m_i / T
    if denominator == "negatives":
        log_others = torch.logsumexp(logits.masked_fill(same, empty), dim=1, keepdim=True)  # (A, 1)
    else:
        log_others = _exclusive_logsumexp(logits.masked_fill(self_mask, empty), empty)  # (A, N), a != i, p
    pair_loss = F.softplus(log_others - (logits - anchor_margin))  # (A, N), l_ip for every pair
    num_pos = positive.sum(dim=1)  # (A,)
    anchor_loss = (pair_loss * positive).sum(dim=1) / num_pos.clamp(min=1)
    return anchor_loss, num_pos > 0


def supcon_margin_loss(
    z: Tensor, targets: Tensor, margins: Tensor, temperature: float, denominator: str = "negatives"
) -> Tensor:
    """Supervised contrastive loss with a class-dependent margin on the positive pair (the ELM embedding term).

    With z_i L2-normalised, s_ij = z_i . z_j, m_i = margins[y_i], P(i) = {p != i : y_p = y_i} and
    N(i) = {n : y_n != y_i}, each anchor-positive pair (i, p) costs

        l_ip = -log( e^{(s_ip - m_i)/T} / (e^{(s_ip - m_i)/T} + sum_{a in O(i, p)} e^{s_ia/T}) ),

    with O(i, p) = N(i) for ``denominator="negatives"`` and O(i, p) = {a : a != i, a != p} for ``"all"``.
    The anchor loss is the mean over P(i); the batch loss is the mean over anchors with P(i) non-empty, and a
    batch with no positive pair gives 0 (still attached to the graph, with zero gradient). With several augmented
    views of each image in the batch, an image's other views are positives, so every anchor has one.

    - ``"negatives"``: l_ip = log(1 + sum_{n in N(i)} exp((s_in - s_ip + m_i)/T)), the embedding-space twin of
      the pairwise margin loss (Menon et al. eq. 11 with delta = m/T): the positive must beat every negative by
      m_i. Other positives are not competitors, so the loss can reach 0 and its margin keeps that meaning.
    - ``"all"``: the other positives also sit in the denominator. With zero margins this is exactly SupCon
      L_out (Khosla et al. 2020, eq. 2).

    Args:
        z: (B, D) embeddings; normalised here, so any scale is accepted.
        targets: (B,) int64 labels.
        margins: (C,) margin m_y per class, in cosine-similarity units.
        temperature: T > 0.
        denominator: "negatives" or "all" (see above).
    Returns:
        Scalar float32 mean loss.
    """
    anchor_loss, has_pos = supcon_margin_anchor_losses(z, targets, margins, temperature, denominator)
    return (anchor_loss * has_pos).sum() / has_pos.sum().clamp(min=1)
