"""What a finished run leaves for people to read: test scores as JSON and four figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lale.atomic import write_json_atomic
from lale.data.dataset import SegmentationDataset
from lale.data.schema import ClassSchema
from lale.data.transforms import normalize_input
from lale.run_layout import FIGURES, TEST_METRICS
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
