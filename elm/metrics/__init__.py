"""Evaluation metrics: pure functions on CPU tensors returning floats or JSON-serialisable dicts."""

from elm.metrics.accuracy import (
    GROUP_NAMES,
    balanced_accuracy,
    group_accuracies,
    group_means,
    group_of_classes,
    per_class_accuracy,
    top1_accuracy,
)
from elm.metrics.calibration import (
    binned_calibration_error,
    expected_calibration_error,
    group_calibration_errors,
    reliability_bins,
)
from elm.metrics.classification import (
    calibration_by_group,
    classification_metrics,
    correct_per_class,
    correct_tau_intervals,
    posthoc_sweep,
)
from elm.metrics.geometry import (
    ClassGeometry,
    average_ranks,
    class_geometry,
    embedding_statistics,
    spearman_correlation,
)
from elm.metrics.margins import (
    EmbeddingGeometry,
    MarginStats,
    embedding_geometry,
    logit_margins,
    margin_statistics,
)

__all__ = [
    "GROUP_NAMES",
    "ClassGeometry",
    "EmbeddingGeometry",
    "MarginStats",
    "average_ranks",
    "balanced_accuracy",
    "binned_calibration_error",
    "calibration_by_group",
    "class_geometry",
    "classification_metrics",
    "correct_per_class",
    "correct_tau_intervals",
    "embedding_geometry",
    "embedding_statistics",
    "expected_calibration_error",
    "group_accuracies",
    "group_calibration_errors",
    "group_means",
    "group_of_classes",
    "logit_margins",
    "margin_statistics",
    "per_class_accuracy",
    "posthoc_sweep",
    "reliability_bins",
    "spearman_correlation",
    "top1_accuracy",
]
