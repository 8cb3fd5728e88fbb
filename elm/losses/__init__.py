"""Losses for long-tail learning. Importing this package registers every loss in ``elm.registry.LOSSES``.

Each registered loss is an ``nn.Module`` built as ``LOSSES.build(name, kwargs, class_counts=counts)`` with a
keyword-only constructor, ``forward(output: ModelOutput, targets) -> scalar mean loss`` and a class attribute
``uses_embeddings`` saying whether it reads ``output.embeddings`` / ``output.projections``. Presets of another
loss are registry aliases (``LOSSES.alias``): ``embedding_margin`` is ``elm`` with tau=0, ``balanced_softmax`` is
``logit_adjusted`` with tau=1; ``LOSSES.describe()`` lists where every name is defined.
"""

from elm.losses import (  # noqa: F401  (imported to register)
    cross_entropy,
    elm,
    ldam,
    logit_adjusted,
    pairwise_margin,
    weighted_logit_adjusted,
)
from elm.losses.functional import (
    adjusted_cross_entropy,
    class_log_prior,
    embedding_margins,
    ldam_loss,
    ldam_margins,
    logit_adjusted_loss,
    pairwise_margin_loss,
    posthoc_adjust,
    prior_power_weights,
    prior_ratio_margins,
    supcon_margin_loss,
)

__all__ = [
    "adjusted_cross_entropy",
    "class_log_prior",
    "embedding_margins",
    "ldam_loss",
    "ldam_margins",
    "logit_adjusted_loss",
    "pairwise_margin_loss",
    "posthoc_adjust",
    "prior_power_weights",
    "prior_ratio_margins",
    "supcon_margin_loss",
]
