"""What the trainer may ask of a loss beyond ``forward(output, targets)``: the multi-term protocol."""

from __future__ import annotations

from typing import Mapping, Protocol, runtime_checkable

from torch import Tensor

from elm.types import ModelOutput


@runtime_checkable
class MultiTermLoss(Protocol):
    """A loss with named parts (ELM: logit + embedding) that reads every augmented view of a batch.

    ``terms`` gets the model output on all V views (view-major rows) and returns the unweighted parts for logging;
    the trainer trains on ``combine(terms)``; ``anchor_statistics`` gives the counts behind the embedding term's
    per-epoch diagnostics (``elm.losses.elm.anchor_diagnostics``).
    """

    uses_embeddings: bool

    def terms(self, output: ModelOutput, targets: Tensor, views: int = 1) -> dict[str, Tensor]: ...

    def combine(self, parts: Mapping[str, Tensor]) -> Tensor: ...

    def anchor_statistics(self, targets: Tensor) -> dict[str, Tensor]: ...


def views_for(loss: object, configured: int) -> int:
    """Augmented views per image: ``configured`` (``train.views``), or when 0, 2 for losses that read embeddings
    and 1 otherwise."""
    if configured:
        return configured
    return 2 if getattr(loss, "uses_embeddings", False) else 1


def first_view(output: ModelOutput, batch: int) -> ModelOutput:
    """The rows of view 0 (the first ``batch`` rows) of a view-major output."""
    return ModelOutput(
        output.logits[:batch],
        output.embeddings[:batch],
        output.projections[:batch] if output.projections is not None else None,
    )
