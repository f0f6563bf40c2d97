"""Segmentation metrics: one confusion matrix per split, macro means exactly as scikit-learn's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    jaccard_score,
    precision_score,
    recall_score,
)

from lale.training.metrics import (
    SegmentationMetrics,
    format_scores,
    scalar_scores,
    score_tensors,
    scores_from_confusion,
)

C = 7
IGNORE = 255
SKLEARN = {
    "f1": f1_score,
    "precision": precision_score,
    "recall": recall_score,
    "iou": jaccard_score,
}


def _labels(seed: int, shape: tuple[int, ...] = (4, 24, 20)) -> tuple[torch.Tensor, torch.Tensor]:
    """Truth and prediction with ignore pixels, a class in neither (5), a class only predicted
    (4) and a class never predicted (3)."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, C, shape, generator=g)
    truth[(truth == 5) | (truth == 4)] = 0
    pred = torch.where(
        torch.rand(shape, generator=g) < 0.6, truth, torch.randint(0, C, shape, generator=g)
    )
    pred[pred == 5] = 1
    pred[pred == 3] = 2
    truth[torch.rand(shape, generator=g) < 0.15] = IGNORE
    return truth, pred


def _sklearn(truth: torch.Tensor, pred: torch.Tensor) -> dict[str, object]:
    keep = truth != IGNORE
    y_true, y_pred = truth[keep].numpy(), pred[keep].numpy()
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    out: dict[str, object] = {"accuracy": accuracy_score(y_true, y_pred), "present": present}
    for name, fn in SKLEARN.items():
        out[f"macro_{name}"] = fn(y_true, y_pred, average="macro", zero_division=0)
        out[name] = fn(y_true, y_pred, labels=present, average=None, zero_division=0)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_pooled_pixels(seed: int) -> None:
    truth, pred = _labels(seed)
    metric = SegmentationMetrics(num_classes=C)
    metric.update(pred, truth)
    got = metric.compute()
    ref = _sklearn(truth, pred)
    assert ref["present"] == [0, 1, 2, 3, 4, 6]
    assert got["present"].tolist() == [c in ref["present"] for c in range(C)]
    assert float(got["accuracy"]) == pytest.approx(ref["accuracy"], abs=1e-12)
    for name in SKLEARN:
        assert float(got[f"macro_{name}"]) == pytest.approx(ref[f"macro_{name}"], abs=1e-12)
        per_class = got[name][ref["present"]].numpy()
        np.testing.assert_allclose(per_class, ref[name], atol=1e-12)
        assert math.isnan(float(got[name][5]))  # absent from both: no score
    assert float(got["f1"][4]) == 0.0  # only predicted: counts, with F1 0
    assert float(got["precision"][3]) == 0.0  # never predicted: precision 0, as sklearn


def test_batched_equals_one_shot_and_logits_are_argmaxed() -> None:
    truth, pred = _labels(3, shape=(6, 16, 16))
    logits = torch.nn.functional.one_hot(pred, C).permute(0, 3, 1, 2).float()
    logits += 0.1 * torch.rand(logits.shape)
    one_shot = SegmentationMetrics(num_classes=C)
    one_shot.update(pred, truth)
    batched = SegmentationMetrics(num_classes=C)
    for i in range(0, 6, 2):
        batched.update(logits[i : i + 2], truth[i : i + 2])
    assert torch.equal(batched.confmat, one_shot.confmat)
    assert int(batched.confmat.sum()) == int((truth != IGNORE).sum())
    a, b = batched.scores(), one_shot.scores()
    assert a == b


def test_forward_scores_the_batch_and_accumulates() -> None:
    truth, pred = _labels(4)
    metric = SegmentationMetrics(num_classes=C)
    batch = metric(pred[:2], truth[:2])
    ref = _sklearn(truth[:2], pred[:2])
    assert float(batch["macro_f1"]) == pytest.approx(ref["macro_f1"], abs=1e-12)
    metric(pred[2:], truth[2:])
    assert float(metric.compute()["macro_f1"]) == pytest.approx(
        _sklearn(truth, pred)["macro_f1"], abs=1e-12
    )
    metric.reset()
    assert int(metric.confmat.sum()) == 0


def test_all_ignore_and_empty_edge_cases() -> None:
    truth = torch.full((2, 8, 8), IGNORE)
    pred = torch.randint(0, C, (2, 8, 8))
    metric = SegmentationMetrics(num_classes=C, class_names=[f"c{i}" for i in range(C)])
    metric.update(pred, truth)
    got = metric.compute()
    assert int(got["confusion_matrix"].sum()) == 0
    assert math.isnan(float(got["accuracy"])) and math.isnan(float(got["macro_f1"]))
    assert not got["present"].any()
    scores = metric.scores()
    assert scores["pixels"] == 0 and scores["accuracy"] is None
    assert scores["macro"] == dict.fromkeys(("f1", "iou", "precision", "recall"))
    assert scores["classes_averaged"] == []
    json.dumps(scores, allow_nan=False)  # JSON-ready even when nothing was counted
    assert "c0" in format_scores(scores)


def test_class_only_under_ignore_does_not_count() -> None:
    truth = torch.tensor([[0, 0, 1, IGNORE]])
    pred = torch.tensor([[0, 0, 1, 2]])  # class 2 predicted only where the truth is ignored
    scores = scores_from_confusion(score_tensors(_confusion(truth, pred))["confusion_matrix"])
    assert scores["classes_averaged"] == ["class_0", "class_1"]
    assert scores["macro"]["f1"] == 1.0 and scores["accuracy"] == 1.0
    assert scores["per_class"]["class_2"]["f1"] is None


def _confusion(truth: torch.Tensor, pred: torch.Tensor, n: int = 3) -> torch.Tensor:
    metric = SegmentationMetrics(num_classes=n)
    metric.update(pred, truth)
    return metric.compute()["confusion_matrix"]


def test_scores_from_confusion_accepts_arrays_and_lists() -> None:
    cm = [[5, 1, 0], [2, 3, 0], [0, 0, 0]]
    from_list = scores_from_confusion(cm, ["a", "b", "c"])
    from_array = scores_from_confusion(np.array(cm, dtype=np.float64), ["a", "b", "c"])
    from_tensor = scores_from_confusion(torch.tensor(cm), ["a", "b", "c"])
    assert from_list == from_array == from_tensor
    assert from_list["pixels"] == 11
    assert from_list["accuracy"] == pytest.approx(8 / 11)
    assert from_list["per_class"]["a"]["f1"] == pytest.approx(10 / 13)
    assert from_list["per_class"]["b"]["iou"] == pytest.approx(3 / 6)
    assert from_list["macro"]["f1"] == pytest.approx((10 / 13 + 6 / 9) / 2)
    assert from_list["per_class"]["c"] == {
        "support": 0,
        "predicted": 0,
        **dict.fromkeys(("f1", "iou", "precision", "recall")),
    }
    assert json.loads(json.dumps(from_list)) == from_list


@pytest.mark.parametrize(
    ("cm", "names", "message"),
    [
        ([[1, 2, 3]], None, "C×C"),
        ([[1, 0], [0, 1]], ["a"], "1 class names"),
        ([[1, 0], [0, 1]], ["a", "a"], "distinct"),
        ([[1, -1], [0, 1]], None, "non-negative"),
        ([[1.5, 0], [0, 1]], None, "whole"),
    ],
)
def test_bad_confusion_matrices(
    cm: list[list[float]], names: list[str] | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        scores_from_confusion(cm, names)


def test_scalars_and_table() -> None:
    truth, pred = _labels(5)
    metric = SegmentationMetrics(num_classes=C, class_names=list("ABCDEFG"))
    metric.update(pred, truth)
    scalars = scalar_scores(metric.compute(), prefix="val/")
    assert set(scalars) == {
        "val/accuracy",
        "val/macro_f1",
        "val/macro_iou",
        "val/macro_precision",
        "val/macro_recall",
    }
    text = " ".join(format_scores(metric.scores(), title="val").split())
    assert "macro" in text and "overall accuracy" in text and "6 of 7 classes" in text
    assert "—" in text  # class F: no score


def test_rejects_labels_out_of_range() -> None:
    metric = SegmentationMetrics(num_classes=3)
    with pytest.raises(RuntimeError):
        metric.update(torch.tensor([[0, 1]]), torch.tensor([[0, 7]]))
    with pytest.raises(ValueError, match="class names"):
        SegmentationMetrics(num_classes=3, class_names=["a"])
