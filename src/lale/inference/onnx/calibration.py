"""Calibration patches for static int8 quantisation: the run's own training data, normalised.

:func:`calibration_patches` draws seeded random crops at the inference tile size from the
training split the run records (``recipe.data``), reads them with lale's dataset code and
normalises them as training did (:func:`~lale.data.transforms.normalize_input`), so the
activation ranges onnxruntime measures are those the model sees in ``lale predict``.
:class:`PatchReader` hands them to ``onnxruntime.quantization`` in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from lale.inference.onnx.io import INPUT_NAME, DataUnavailableError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["CALIBRATION_PATCHES", "CALIBRATION_TILE", "Calibration", "calibration_patches"]

CALIBRATION_PATCHES = 64
"""Default number of calibration crops."""
CALIBRATION_TILE = 256
"""Default crop side: the window side ``lale predict`` feeds the model (``--tile``)."""


@dataclass(frozen=True)
class Calibration:
    """Normalised calibration crops and where they came from.

    Attributes:
        patches: ``N×C×T×T`` float32, normalised as the model's input.
        data: Dataset root.
        split: Split read.
        images: Images in the split (crops are drawn from them in turn).
        tile: Crop side.
        seed: Seed of the image order and crop positions.
    """

    patches: NDArray[np.float32]
    data: Path
    split: str
    images: int
    tile: int
    seed: int

    def describe(self) -> str:
        """One line for metadata and reports."""
        n = self.patches.shape[0]
        return (
            f"{n} random {self.tile}×{self.tile} crops (seed {self.seed}) from the "
            f"{self.images} images of {self.data / self.split}"
        )

    def batches(self, batch_size: int) -> Iterator[dict[str, NDArray[np.float32]]]:
        """Feeds of ``batch_size`` crops for an onnxruntime session."""
        for start in range(0, self.patches.shape[0], batch_size):
            yield {INPUT_NAME: self.patches[start : start + batch_size]}


def _training_root(run_dir: Path, data: str | Path | None, split: str) -> Path:
    from lale.runs import CONFIG_NAME, load_config

    if data is None:
        recorded = load_config(run_dir / CONFIG_NAME).recipe.data
        if not recorded:
            raise DataUnavailableError(
                f"{run_dir / CONFIG_NAME}: the run records no dataset (recipe.data) to "
                "calibrate on; give one with --data, or use --int8-kind dynamic"
            )
        data = recorded
    root = Path(data)
    if not (root / split).is_dir():
        raise DataUnavailableError(
            f"{root / split}: training split to calibrate on not found on this machine; "
            "give the dataset with --data, or use --int8-kind dynamic"
        )
    return root


def calibration_patches(
    run_dir: str | Path,
    count: int = CALIBRATION_PATCHES,
    *,
    data: str | Path | None = None,
    split: str = "train",
    tile: int = CALIBRATION_TILE,
    seed: int = 0,
) -> Calibration:
    """``count`` normalised random crops of the run's training split.

    Images are taken in a seeded random order (again from the start when ``count`` exceeds
    them), one crop each; images smaller than ``tile`` are padded as in training.

    Args:
        run_dir: The run (its config gives the schema, bands, scaling and normalisation).
        count: Crops to draw.
        data: Dataset root; default the one the run was trained on (``recipe.data``).
        split: Split to draw from.
        tile: Crop side.
        seed: Seed of the order and the crop positions.

    Raises:
        DataUnavailableError: No dataset given or recorded, or its split folder is missing.
        RunError, DataError: Bad run or dataset files (named).
    """
    from lale.data.dataset import SegmentationDataset
    from lale.data.transforms import normalize_input
    from lale.runs import RunError, load_config
    from lale.training.sampling import seeded_crops

    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    run_dir = Path(run_dir)
    root = _training_root(run_dir, data, split)
    config = load_config(run_dir / "config.json")
    dataset = SegmentationDataset(root, split, config.schema(), mode="train", crop_size=tile)
    if len(dataset) == 0:
        raise RunError(root / split, "no images to calibrate on")
    spec = config.image_spec()
    crops = [normalize_input(c[None], spec)[0] for c in seeded_crops(dataset, count, seed)]
    patches = torch.stack(crops).numpy().astype(np.float32, copy=False)
    return Calibration(patches, root, split, len(dataset), tile, seed)
