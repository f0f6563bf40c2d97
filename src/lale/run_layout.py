"""The files of a run directory, named once.

A run directory holds what rebuilds a trained model (``config.json`` + ``model.safetensors``),
what resumes its training (``checkpoints/last.ckpt``), what it measured and drew, and what was
exported from it. Every module that reads or writes one of these files takes its name from here.
"""

from __future__ import annotations

from pathlib import PurePath

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "DATASET_SCHEMA",
    "FIGURES",
    "LOCK",
    "METRICS_CSV",
    "ONNX",
    "SKIPPED_PAIRS",
    "TEST_METRICS",
    "TEST_PER_IMAGE",
    "UNKNOWN_COLOURS",
    "WEIGHTS",
    "run_files",
]

CONFIG = "config.json"
"""Model name and arguments, class schema, bands, normalisation, recipe (:class:`RunConfig`)."""
WEIGHTS = "model.safetensors"
"""fp32 weights of the best validation epoch."""
CHECKPOINT = PurePath("checkpoints") / "last.ckpt"
"""The trainer's resumable state (read with ``weights_only=True``)."""
LOCK = ".lock"
"""Held by the process that trains into the run directory."""
METRICS_CSV = "metrics.csv"
"""One row per epoch."""
TEST_METRICS = "test_metrics.json"
"""Scores on the test split."""
SKIPPED_PAIRS = "skipped_pairs.json"
"""The image/mask pairs ``--skip-bad-pairs`` left out, per split, with the reason."""
TEST_PER_IMAGE = "test_per_image.npz"
"""The confusion matrix of every test image (for bootstrap intervals over test images)."""
UNKNOWN_COLOURS = "unknown_colours.json"
"""Mask pixels of colours or values not in the schema, per split and file (only if any)."""
FIGURES = {
    "confusion": "confusion_matrix.png",
    "per_class": "per_class.png",
    "samples": "samples.png",
    "history": "history.png",
}
"""Figures written at the end of training, by role."""
ONNX = "model.onnx"
"""Default target of ``lale export``."""
DATASET_SCHEMA = "schema.json"
"""A class schema in a dataset's root folder, picked up by training."""


def run_files() -> tuple[str, ...]:
    """Every top-level file a finished training leaves in its run directory."""
    return (CONFIG, WEIGHTS, METRICS_CSV, TEST_METRICS, *FIGURES.values())
