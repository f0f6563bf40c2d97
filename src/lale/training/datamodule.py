"""The LightningDataModule over an ARAS400k-layout folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from lale.data.collate import PadCollate
from lale.data.dataset import SegmentationDataset
from lale.data.schema import ClassSchema
from lale.data.transforms import normalize_input
from lale.training.sampling import (
    EpochBatchSampler,
    ResumableLoader,
    SampleKey,
    mix_seed,
    seeded_crops,
)


class KeyedSamples(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Training samples addressed by ``(index, crop_seed)`` keys: reproducible random crops."""

    def __init__(self, dataset: SegmentationDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> tuple[torch.Tensor, torch.Tensor]:
        index, seed = key
        return self.dataset.sample(index, seed)


class LandCoverDataModule(L.LightningDataModule):
    """Train / val / test splits of ``root`` (``{split}/{images,masks}``).

    Training takes random ``crop_size`` crops in a deterministic, resumable order
    (:mod:`lale.training.sampling`), sharded over DDP ranks; validation and test run on whole
    images, each rank on its own share (metrics are summed across ranks).

    Args:
        root: Dataset root.
        schema: Class schema.
        batch_size: Training samples per step and device.
        crop_size: Training crop side.
        workers: DataLoader worker processes.
        seed: Run seed (epoch order and crops).
        strict: Treat mask colours outside the schema as errors.
        eval_batch_size: Batch for validation and test (default: ``batch_size``).
        samples_per_epoch: Training crops per epoch (default: one per training image).
        skip_bad_pairs: Leave out pairs whose files fail their checks instead of stopping.
    """

    def __init__(
        self,
        root: str | Path,
        schema: ClassSchema,
        batch_size: int = 24,
        crop_size: int = 256,
        workers: int = 0,
        seed: int = 0,
        strict: bool = False,
        eval_batch_size: int | None = None,
        samples_per_epoch: int | None = None,
        skip_bad_pairs: bool = False,
    ) -> None:
        super().__init__()
        self.root, self.schema = Path(root), schema
        self.batch_size, self.crop_size, self.workers = batch_size, crop_size, workers
        self.seed, self.strict = seed, strict
        self.eval_batch_size = eval_batch_size or batch_size
        self.samples_per_epoch = samples_per_epoch
        self.skip_bad_pairs = skip_bad_pairs
        self.splits: dict[str, SegmentationDataset] = {}

    def bad_pairs(self) -> dict[str, list[tuple[str, str]]]:
        """The pairs left out per split (``skip_bad_pairs``), for the splits built so far."""
        return {name: d.bad_pairs for name, d in self.splits.items() if d.bad_pairs}

    def split(self, name: str) -> SegmentationDataset:
        """The dataset of split ``name``, built (and its headers checked) on first use."""
        if name not in self.splits:
            self.splits[name] = SegmentationDataset(
                self.root,
                name,
                self.schema,
                crop_size=self.crop_size,
                strict=self.strict,
                skip_bad=self.skip_bad_pairs,
            )
        return self.splits[name]

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None):
            self.split("train")
            self.split("val")
        if stage in ("test", None):
            self.split("test")

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _loader_options(self) -> dict[str, Any]:
        return {
            "num_workers": self.workers,
            "collate_fn": PadCollate(self.schema.ignore_index),
            "persistent_workers": self.workers > 0,
            "pin_memory": torch.cuda.is_available(),
        }

    def train_dataloader(self) -> ResumableLoader:
        data = self.split("train")
        world, rank = self._world()
        sampler = EpochBatchSampler(
            len(data),
            self.batch_size,
            self.seed,
            world,
            rank,
            samples_per_epoch=self.samples_per_epoch,
        )
        return ResumableLoader(KeyedSamples(data), sampler, **self._loader_options())

    def eval_loader(self, name: str) -> DataLoader[Any]:
        """Whole images of split ``name`` (this rank's share under DDP), in order."""
        data = self.split(name)
        world, rank = self._world()
        share = Subset(data, range(rank, len(data), world)) if world > 1 else data
        return DataLoader(share, batch_size=self.eval_batch_size, **self._loader_options())

    def fixed_crops(self, count: int) -> Callable[[], Iterator[Tensor]]:
        """Normalised training crops that depend on the run seed alone, in batches.

        ``count`` crops (:func:`~lale.training.sampling.seeded_crops`), without augmentation,
        normalised as the model's input, in near-equal batches of about ``batch_size`` (never
        a batch of one); every call yields the same tensors. For BatchNorm statistics.
        """
        seed = mix_seed(self.seed, 0xB47C) % 2**31  # seeded_crops multiplies it

        def batches() -> Iterator[Tensor]:
            crops = torch.stack(seeded_crops(self.split("train"), count, seed))
            pieces = max(1, min(-(-count // self.batch_size), count // 2))
            for chunk in torch.tensor_split(crops, pieces):
                yield normalize_input(chunk, self.schema.image)

        return batches

    def val_dataloader(self) -> DataLoader[Any]:
        return self.eval_loader("val")

    def test_dataloader(self) -> DataLoader[Any]:
        return self.eval_loader("test")
