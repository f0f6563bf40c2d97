"""Segmentation scores from one confusion matrix accumulated over a whole split.

Overall accuracy, per-class precision, recall, F1 and IoU, and their macro mean over the classes
present in truth or prediction (scikit-learn's ``average="macro"`` on the pooled pixels); ignore
pixels are left out. Definitions: docs/design.md#metrics. :class:`SegmentationMetrics` sums the
matrix across DDP processes; :func:`scores_from_confusion` scores any matrix.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from lale.formatting import percent

__all__ = [
    "SCORE_NAMES",
    "SegmentationMetrics",
    "format_scores",
    "scalar_scores",
    "score_tensors",
    "scores_from_confusion",
    "scores_table",
]

SCORE_NAMES = ("f1", "iou", "precision", "recall")
"""The per-class scores, each also macro-averaged (``macro_f1``, …)."""

_MISSING = "—"


def score_tensors(confusion: Tensor) -> dict[str, Tensor]:
    """All scores of a confusion matrix, as tensors on its device.

    Args:
        confusion: ``C × C`` counts, rows = truth, columns = prediction.

    Returns:
        ``accuracy`` and ``macro_f1``/``macro_iou``/``macro_precision``/``macro_recall``
        (0-d; NaN when nothing was counted); ``f1``, ``iou``, ``precision``, ``recall``
        (``C``; NaN for classes absent from truth and prediction); ``support`` (truth pixels per
        class), ``predicted`` (predicted pixels per class), ``present`` (bool, the classes the
        macro means average over) and ``confusion_matrix`` (the input, as ``int64``).

    Raises:
        ValueError: ``confusion`` is not a square matrix.
    """
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion matrix must be C×C, got shape {tuple(confusion.shape)}")
    dtype = torch.float32 if confusion.device.type == "mps" else torch.float64
    cm = confusion.to(dtype)
    tp = cm.diagonal()
    support = cm.sum(dim=1)
    predicted = cm.sum(dim=0)
    present = (support + predicted) > 0
    nan = torch.tensor(math.nan, dtype=dtype, device=cm.device)

    def ratio(num: Tensor, den: Tensor) -> Tensor:
        # 0 where the denominator is 0 (scikit-learn's zero_division), NaN for absent classes.
        value = torch.where(den > 0, num / den.clamp_min(1), torch.zeros_like(num))
        return torch.where(present, value, nan)

    out: dict[str, Tensor] = {
        "precision": ratio(tp, predicted),
        "recall": ratio(tp, support),
        "f1": ratio(2 * tp, support + predicted),
        "iou": ratio(tp, support + predicted - tp),
    }
    n_present = present.sum()
    for name in SCORE_NAMES:
        total = torch.where(present, out[name], torch.zeros_like(tp)).sum()
        out[f"macro_{name}"] = torch.where(n_present > 0, total / n_present.clamp_min(1), nan)
    pixels = cm.sum()
    out["accuracy"] = torch.where(pixels > 0, tp.sum() / pixels.clamp_min(1), nan)
    out["support"] = support.to(torch.int64)
    out["predicted"] = predicted.to(torch.int64)
    out["present"] = present
    out["confusion_matrix"] = confusion.to(torch.int64)
    return out


def scalar_scores(scores: Mapping[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """The 0-d entries of :func:`score_tensors` output (``accuracy``, ``macro_*``), for logging.

    Args:
        scores: Output of :func:`score_tensors` or :meth:`SegmentationMetrics.compute`.
        prefix: Prepended to every key, e.g. ``"val/"``.
    """
    return {f"{prefix}{k}": v for k, v in scores.items() if v.ndim == 0}


def _as_counts(confusion: Tensor | NDArray[Any] | Sequence[Sequence[int]]) -> Tensor:
    if isinstance(confusion, Tensor):
        cm = confusion.detach().cpu()
    else:
        cm = torch.as_tensor(np.asarray(confusion))
    if cm.is_complex() or cm.dtype == torch.bool:
        raise ValueError(f"confusion matrix must hold pixel counts, got {cm.dtype}")
    if cm.is_floating_point() and not bool((torch.isfinite(cm) & (cm == cm.round())).all()):
        raise ValueError("confusion matrix must hold whole pixel counts")
    if bool((cm < 0).any()):
        raise ValueError("confusion matrix counts must be non-negative")
    return cm.to(torch.int64)


def _num(value: Tensor) -> float | None:
    v = float(value)
    return None if math.isnan(v) else v


def scores_from_confusion(
    confusion: Tensor | NDArray[Any] | Sequence[Sequence[int]],
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """JSON-ready scores of a confusion matrix (rows = truth, columns = prediction).

    Args:
        confusion: ``C × C`` pixel counts (tensor on any device, array or nested lists).
        names: Class names; default ``class_0`` … ``class_{C-1}``.

    Returns:
        A dictionary of plain Python values (scores are fractions in 0..1; ``None`` where a
        score is undefined)::

            {"pixels": int, "accuracy": float | None,
             "macro": {"f1", "iou", "precision", "recall"},
             "classes_averaged": [names of the classes the macro means average over],
             "per_class": {name: {"support", "predicted", "f1", "iou", "precision", "recall"}},
             "confusion_matrix": [[int, ...], ...]}

    Raises:
        ValueError: The matrix is not square, holds negative or fractional counts, or the
            number of names does not match.
    """
    cm = _as_counts(confusion)
    s = score_tensors(cm)
    n = cm.shape[0]
    labels = [f"class_{i}" for i in range(n)] if names is None else [str(x) for x in names]
    if len(labels) != n:
        raise ValueError(f"{len(labels)} class names for a {n}×{n} confusion matrix")
    if len(set(labels)) != n:
        raise ValueError(f"class names must be distinct, got {labels}")
    present = s["present"].tolist()
    per_class = {
        name: {
            "support": int(s["support"][i]),
            "predicted": int(s["predicted"][i]),
            **{k: _num(s[k][i]) for k in SCORE_NAMES},
        }
        for i, name in enumerate(labels)
    }
    return {
        "pixels": int(cm.sum()),
        "accuracy": _num(s["accuracy"]),
        "macro": {k: _num(s[f"macro_{k}"]) for k in SCORE_NAMES},
        "classes_averaged": [name for name, p in zip(labels, present, strict=True) if p],
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
    }


class SegmentationMetrics(MulticlassConfusionMatrix):
    """Accumulates one confusion matrix over a split; ``compute()`` returns all scores.

    ``update(preds, target)`` takes logits or probabilities ``B×C×H×W`` (arg-maxed over ``C``)
    or label maps ``B×H×W``, and the target ``B×H×W`` with ``ignore_index`` for unlabelled
    pixels. The state is the ``C × C`` matrix only, summed across processes under DDP.

    Args:
        num_classes: Number of classes ``C``.
        ignore_index: Target label excluded from every count; ``None`` counts all pixels.
        class_names: Names for :meth:`scores` (default ``class_0`` …).
        validate_args: Check every batch's values (a ``torch.unique`` per batch; turn off for
            speed once the data pipeline is trusted).
        **kwargs: Passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``).

    Example:
        >>> metric = SegmentationMetrics(num_classes=7)
        >>> metric.update(logits, masks)  # once per batch
        >>> metric.compute()["macro_f1"]  # doctest: +SKIP
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        class_names: Sequence[str] | None = None,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            ignore_index=ignore_index,
            normalize=None,
            validate_args=validate_args,
            **kwargs,
        )
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.class_names = tuple(class_names) if class_names is not None else None

    def compute(self) -> dict[str, Tensor]:  # type: ignore[override]
        """The scores of the accumulated matrix; see :func:`score_tensors`."""
        return score_tensors(self.confmat)

    def scores(self) -> dict[str, Any]:
        """JSON-ready scores of the accumulated (synchronised) matrix; see
        :func:`scores_from_confusion`."""
        return scores_from_confusion(self.compute()["confusion_matrix"], self.class_names)


_pct = functools.partial(percent, digits=2, missing=_MISSING)


def scores_table(scores: Mapping[str, Any], title: str | None = None) -> Table:
    """A rich table of :func:`scores_from_confusion` output, scores in percent.

    One row per class (support share, precision, recall, F1, IoU), then the macro means; the
    caption gives the overall accuracy, the pixel count and how many classes the means average.
    """
    pixels = int(scores["pixels"])
    per_class: Mapping[str, Mapping[str, Any]] = scores["per_class"]
    table = Table(title=title)
    table.add_column("class")
    table.add_column("pixels %", justify="right")
    for head in ("precision", "recall", "F1", "IoU"):
        table.add_column(head, justify="right")
    for name, row in per_class.items():
        share = _pct(row["support"] / pixels) if pixels else _MISSING
        cells = [_pct(row[k]) for k in ("precision", "recall", "f1", "iou")]
        table.add_row(escape(name), share, *cells)
    macro = scores["macro"]
    table.add_section()
    table.add_row(
        "macro", "", *[_pct(macro[k]) for k in ("precision", "recall", "f1", "iou")], style="bold"
    )
    averaged = len(scores["classes_averaged"])
    table.caption = (
        f"overall accuracy {_pct(scores['accuracy'])} % · {pixels:,} pixels\n"
        f"macro over {averaged} of {len(per_class)} classes"
    )
    return table


def format_scores(scores: Mapping[str, Any], title: str | None = None, width: int = 100) -> str:
    """:func:`scores_table` as plain text (no colour), e.g. for logs and reports."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(scores_table(scores, title=title))
    return buffer.getvalue()
