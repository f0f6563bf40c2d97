"""Training: losses, segmentation metrics and (elsewhere in this package) the Lightning parts.

Importing :mod:`lale.training.metrics` imports ``torchmetrics`` (and through it torchvision),
which takes a few seconds; the losses need only torch.
"""

from lale.training.losses import (
    LOSS_NAMES,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    LossName,
    WeightScheme,
    build_loss,
    class_weights_from_counts,
)
from lale.training.metrics import (
    SegmentationMetrics,
    format_scores,
    scalar_scores,
    score_tensors,
    scores_from_confusion,
    scores_table,
)

__all__ = [
    "LOSS_NAMES",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceLoss",
    "LossName",
    "SegmentationMetrics",
    "WeightScheme",
    "build_loss",
    "class_weights_from_counts",
    "format_scores",
    "scalar_scores",
    "score_tensors",
    "scores_from_confusion",
    "scores_table",
]
