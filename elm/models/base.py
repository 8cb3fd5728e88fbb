"""A backbone that yields embeddings, plus the shared heads: the one forward every model in ``elm`` exposes."""

from __future__ import annotations

from torch import Tensor, nn

from elm.models.heads import ProjectionHead, make_classifier
from elm.types import ModelOutput


class EmbeddingClassifier(nn.Module):
    """``backbone`` (B, C, H, W) -> (B, D) embeddings; a classifier and an optional projection head on top.

    Attributes:
        has_projection: whether ``forward`` fills ``ModelOutput.projections`` (losses that need it check this).
        cosine_classifier: whether the logits are scaled cosines (normalised weights and features).
        embedding_dim: D.
    """

    def __init__(
        self,
        backbone: nn.Module,
        embedding_dim: int,
        num_classes: int,
        projection_dim: int | None,
        cosine_classifier: bool,
        cosine_scale: float,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.embedding_dim = embedding_dim
        self.classifier = make_classifier(embedding_dim, num_classes, cosine_classifier, cosine_scale)
        self.projection = ProjectionHead(embedding_dim, projection_dim) if projection_dim is not None else None
        self.has_projection: bool = self.projection is not None
        self.cosine_classifier: bool = cosine_classifier

    def forward(self, x: Tensor) -> ModelOutput:
        z = self.backbone(x)  # (B, D)
        projections = self.projection(z) if self.projection is not None else None
        return ModelOutput(logits=self.classifier(z), embeddings=z, projections=projections)
