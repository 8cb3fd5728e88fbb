"""Model factories; importing this package registers every model in ``elm.registry.MODELS``."""
from elm.models import resnet20, resnet32, resnet50, resnet56, tiny_mlp  # noqa: F401  (registers)
from elm.models.base import EmbeddingClassifier
from elm.models.heads import CosineClassifier, ProjectionHead

__all__ = ["CosineClassifier", "EmbeddingClassifier", "ProjectionHead"]
