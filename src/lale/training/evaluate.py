"""Score a trained run on a dataset split: one confusion matrix over the whole split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from lale.data.collate import PadCollate
from lale.data.dataset import SegmentationDataset, bad_pairs_message
from lale.data.io.layout import skipped_message
from lale.data.survey.audit import audit_labels, unknown_record, unknown_summary
from lale.data.transforms import normalize_input
from lale.progress import ProgressFn
from lale.runs import RunError, load_run
from lale.training.metrics import SegmentationMetrics


def evaluate_run(
    run_dir: str | Path,
    data: str | Path,
    split: str = "test",
    batch_size: int = 8,
    device: str = "cpu",
    workers: int = 0,
    strict: bool = False,
    max_unknown: float = 0.5,
    skip_bad_pairs: bool = False,
    progress: ProgressFn | None = None,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Evaluate the run's model on ``data/split`` (whole images, ignore pixels excluded).

    The run is rebuilt from ``config.json`` and ``model.safetensors`` alone (no pickle); the
    class schema, band selection and normalisation are the ones it was trained with.

    Args:
        max_unknown: Largest tolerated fraction of unknown mask pixels, as in training; a
            split with no labelled pixel is always an error.
        skip_bad_pairs: Leave out pairs whose files fail their checks (``skipped_pairs`` in
            the result) instead of stopping; an error when none is left.
        forward: Replaces the PyTorch model's forward pass, e.g. an
            :class:`~lale.inference.onnx.backend.OnnxBackend` of the run's export: it gets the
            normalised ``B×C×H×W`` float32 batch on ``device`` and returns ``B×K×H×W`` logits.
            The run directory still supplies the schema and normalisation. ``None``: the model.

    Returns:
        JSON-ready scores (:func:`~lale.training.metrics.scores_from_confusion` layout) plus
        ``run``, ``data``, ``split`` and ``images``.

    Raises:
        RunError: The run directory is incomplete or invalid (names the file).
        DataError: Bad dataset input (names the file), or masks the schema does not label.
    """
    model, config = load_run(run_dir, device)
    schema = config.schema()
    dataset = SegmentationDataset(
        data, split, schema, mode="eval", strict=strict, skip_bad=skip_bad_pairs
    )
    if len(dataset) == 0:
        raise RunError(Path(data) / split, "no images to evaluate")
    audit_labels(dataset.pairs, schema, str(Path(data) / split / "masks"), max_unknown)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=PadCollate(schema.ignore_index),
    )
    spec = config.image_spec()
    predict = model if forward is None else forward
    metrics = SegmentationMetrics(schema.num_classes, schema.ignore_index, list(schema.names))
    metrics = metrics.to(device)
    done = 0
    with torch.inference_mode():
        for image, mask in loader:
            x, y = normalize_input(image.to(device), spec), mask.to(device).long()
            metrics.update(predict(x), y)
            done += image.shape[0]
            if progress is not None:
                progress(done, len(dataset))
    scores = metrics.scores()
    unknown = dataset.unknown_pixels()
    return {
        "run": str(run_dir),
        "model": config.model,
        "data": str(data),
        "split": split,
        "images": len(dataset),
        "unknown_mask_pixels": unknown.total,
        "unknown_mask_files": unknown_record(unknown)["files"],
        "unknown_mask_summary": unknown_summary(split, unknown) if unknown.counts else "",
        "skipped_files": skipped_message(dataset.skipped),
        "skipped_pairs": [{"name": n, "why": why} for n, why in dataset.bad_pairs],
        "skipped_pairs_summary": bad_pairs_message(split, dataset.bad_pairs),
        **scores,
    }
