"""Model factories; importing this package registers every model in ``elm.registry.MODELS``."""

from elm.models import cifar_resnet, resnet50, tiny_mlp  # noqa: F401  (registers)
from elm.models.base import EmbeddingClassifier
from elm.models.heads import CosineClassifier, ProjectionHead

__all__ = ["CosineClassifier", "EmbeddingClassifier", "ProjectionHead"]
