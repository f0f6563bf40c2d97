"""The LightningDataModule over an ARAS400k-layout folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from lale.data.collate import PadCollate
from lale.data.dataset import SegmentationDataset
from lale.data.schema import ClassSchema
from lale.training.sampling import EpochBatchSampler, ResumableLoader, SampleKey


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
    ) -> None:
        super().__init__()
        self.root, self.schema = Path(root), schema
        self.batch_size, self.crop_size, self.workers = batch_size, crop_size, workers
        self.seed, self.strict = seed, strict
        self.eval_batch_size = eval_batch_size or batch_size
        self.samples_per_epoch = samples_per_epoch
        self.splits: dict[str, SegmentationDataset] = {}

    def split(self, name: str) -> SegmentationDataset:
        """The dataset of split ``name``, built (and its headers checked) on first use."""
        if name not in self.splits:
            self.splits[name] = SegmentationDataset(
                self.root, name, self.schema, crop_size=self.crop_size, strict=self.strict
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

    def _eval_loader(self, name: str) -> DataLoader[Any]:
        data = self.split(name)
        world, rank = self._world()
        share = Subset(data, range(rank, len(data), world)) if world > 1 else data
        return DataLoader(share, batch_size=self.eval_batch_size, **self._loader_options())

    def val_dataloader(self) -> DataLoader[Any]:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader[Any]:
        return self._eval_loader("test")
