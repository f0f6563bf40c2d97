"""What a finished run leaves for people to read: test scores as JSON and four figures."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lale.atomic import write_bytes_atomic, write_json_atomic
from lale.data.dataset import SegmentationDataset
from lale.data.schema import ClassSchema
from lale.data.transforms import normalize_input
from lale.run_layout import FIGURES, TEST_METRICS, TEST_PER_IMAGE
from lale.training.figures import (
    display_image,
    plot_confusion,
    plot_history,
    plot_per_class,
    plot_samples,
)


def predict_samples(
    net: torch.nn.Module, dataset: SegmentationDataset, count: int = 6
) -> list[tuple[Any, Any, Any]]:
    """``(display image, truth, prediction)`` for the first ``count`` images of ``dataset``."""
    schema = dataset.schema
    device = next(net.parameters()).device
    samples = []
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for i in range(min(count, len(dataset))):
            image, mask = dataset[i]
            x = normalize_input(image[None].to(device), schema.image)
            pred = net(x).argmax(1)[0].to(torch.uint8).cpu().numpy()
            samples.append((display_image(image.numpy(), schema.image), mask.numpy(), pred))
    net.train(was_training)
    return samples


def write_outputs(
    run_dir: Path,
    scores: dict[str, Any],
    net: torch.nn.Module,
    test_set: SegmentationDataset,
    history: list[dict[str, Any]],
    schema: ClassSchema,
) -> dict[str, Path]:
    """Write ``test_metrics.json`` and the figures into ``run_dir``; return their paths."""
    write_json_atomic(run_dir / TEST_METRICS, scores)
    paths = {"metrics": run_dir / TEST_METRICS}
    paths["confusion"] = plot_confusion(scores, run_dir / FIGURES["confusion"])
    paths["per_class"] = plot_per_class(scores, run_dir / FIGURES["per_class"])
    samples = predict_samples(net, test_set)
    if samples:
        paths["samples"] = plot_samples(
            samples, schema, run_dir / FIGURES["samples"], title="test images · truth · prediction"
        )
    if history:
        paths["history"] = plot_history(history, run_dir / FIGURES["history"])
    return paths


def write_per_image(run_dir: Path, names: Sequence[str], confusion: torch.Tensor) -> Path:
    """Write every test image's confusion matrix (``N×K×K``, rows truth) with its name.

    ``test_per_image.npz`` holds ``names`` (unicode) and ``confusion`` (int64) and loads with
    ``numpy.load(..., allow_pickle=False)``; the benchmark's bootstrap over test images reads
    it (:func:`lale.benchmark.statistics.bootstrap_gap`).
    """
    if len(names) != confusion.shape[0]:
        raise ValueError(f"{len(names)} names for {confusion.shape[0]} confusion matrices")
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, names=np.asarray(list(names), dtype=str), confusion=confusion.numpy()
    )
    path = run_dir / TEST_PER_IMAGE
    write_bytes_atomic(path, buffer.getvalue())
    return path
