"""ImageFolder data for ``lale pretrain``: timm's transforms, seeded per sample for exact resumes.

The dataset root holds ``train/`` and ``val/``, each with one folder per class (the ImageNet-1k
layout: ``train/n01440764/*.JPEG``). Training images go through timm's ``create_transform``
(random resized crop, flip, RandAugment, random erasing) under a seed of their own, drawn by
:class:`~lale.training.sampling.EpochBatchSampler`: a resumed run sees the same crops and
augmentations as one that never stopped. Validation images are resized and centre-cropped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lale.errors import DataError
from lale.training.sampling import EpochBatchSampler, ResumableLoader

__all__ = ["AugmentSpec", "ImageFolderData", "find_classes"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class AugmentSpec:
    """timm's training augmentation, as ``create_transform`` takes it.

    Attributes:
        img_size: Side of the square crops.
        auto_augment: timm's policy string (``"rand-m9-mstd0.5-inc1"`` is RandAugment, the
            DeiT recipe); ``None`` for none.
        reprob: Random-erasing probability.
        mean: Per-channel mean the images are normalised with (ImageNet's by default).
        std: Per-channel standard deviation.
        crop_pct: Centre-crop fraction of the validation images.
        interpolation: Resize interpolation.
    """

    img_size: int = 224
    auto_augment: str | None = "rand-m9-mstd0.5-inc1"
    reprob: float = 0.25
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    crop_pct: float = 0.9
    interpolation: str = "bicubic"

    def transform(self, training: bool) -> Any:
        """timm's transform for training (augmented) or validation (resize + centre crop)."""
        from timm.data import create_transform

        if training:
            return create_transform(
                self.img_size,
                is_training=True,
                auto_augment=pillow_safe_policy(self.auto_augment),
                re_prob=self.reprob,
                interpolation=self.interpolation,
                mean=self.mean,
                std=self.std,
            )
        return create_transform(
            self.img_size,
            is_training=False,
            crop_pct=self.crop_pct,
            interpolation=self.interpolation,
            mean=self.mean,
            std=self.std,
        )


def pillow_safe_policy(policy: str | None) -> str | None:
    """``policy`` with RandAugment's magnitude capped at 9 where its posterize could reach 0 bits.

    timm's increasing-severity ops (``inc1``) posterize to ``4 - level·4/10`` bits, 0 at the
    maximal level 10 that magnitude noise (``mstd``) can draw; Pillow 12 and later refuse
    0 bits and the step fails. A policy that sets ``mmax`` itself is left as it is.
    """
    if policy is None or not policy.startswith("rand"):
        return policy
    parts = policy.split("-")
    if "inc1" in parts and not any(p.startswith("mmax") for p in parts):
        return policy + "-mmax9"
    return policy


def find_classes(split_dir: Path) -> list[str]:
    """The class folders of one split, sorted (torchvision's order).

    Raises:
        DataError: The folder is missing or holds no class folder with images.
    """
    if not split_dir.is_dir():
        raise DataError(split_dir, "missing: an ImageFolder root needs train/ and val/")
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DataError(split_dir, "no class folders (expected SPLIT/CLASS/IMAGE files)")
    return classes


def _samples(split_dir: Path, classes: list[str]) -> list[tuple[Path, int]]:
    samples = []
    for label, name in enumerate(classes):
        files = sorted(
            p for p in (split_dir / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
        )
        samples += [(p, label) for p in files]
    if not samples:
        raise DataError(split_dir, "no images in its class folders")
    return samples


def _load_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise DataError(path, f"unreadable image ({err})") from None


class FolderImages(Dataset[tuple[Tensor, int]]):
    """One split of an ImageFolder; training items are ``(index, seed)`` keys."""

    def __init__(self, split_dir: Path, classes: list[str], transform: Any, training: bool):
        self.samples = _samples(split_dir, classes)
        self.transform = transform
        self.training = training

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: Any) -> tuple[Tensor, int]:
        index, seed = key if self.training else (key, None)
        path, label = self.samples[index]
        image = _load_rgb(path)
        if seed is None:
            return self.transform(image), label
        # timm's transforms draw from Python's, NumPy's (RandAugment's op choice) and torch's
        # global generators: seed all three for this sample alone and leave them as they were.
        state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self.transform(image), label
        finally:
            random.setstate(state)
            np.random.set_state(np_state)


class ImageFolderData(L.LightningDataModule):
    """``train/`` and ``val/`` of an ImageFolder root, sharded deterministically per rank.

    Raises:
        DataError: A split is missing or empty, or the splits name different classes.
    """

    def __init__(
        self,
        root: Path,
        augment: AugmentSpec,
        batch_size: int,
        seed: int,
        workers: int = 0,
        drop_last: bool = True,
    ) -> None:
        super().__init__()
        self.root = root
        self.classes = find_classes(root / "train")
        val_classes = find_classes(root / "val")
        if val_classes != self.classes:
            extra = sorted(set(val_classes) ^ set(self.classes))[:3]
            raise DataError(root / "val", f"classes differ from train/ (e.g. {extra})")
        self.train_set = FolderImages(
            root / "train", self.classes, augment.transform(True), training=True
        )
        self.val_set = FolderImages(
            root / "val", self.classes, augment.transform(False), training=False
        )
        if drop_last and len(self.train_set) < batch_size:
            raise DataError(
                root / "train", f"{len(self.train_set)} images, fewer than one batch ({batch_size})"
            )
        self.batch_size, self.seed, self.workers = batch_size, seed, workers
        self.drop_last = drop_last

    def batches_per_epoch(self, world_size: int = 1) -> int:
        """Optimizer steps per epoch on ``world_size`` ranks."""
        return len(self._sampler(world_size, 0))

    def _sampler(self, world_size: int, rank: int) -> EpochBatchSampler:
        return EpochBatchSampler(
            len(self.train_set),
            self.batch_size,
            self.seed,
            num_replicas=world_size,
            rank=rank,
            drop_last=self.drop_last,
        )

    def train_dataloader(self) -> DataLoader[Any]:
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        return ResumableLoader(
            self.train_set,
            self._sampler(world, rank),
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
        )

    def val_dataloader(self) -> DataLoader[Any]:
        # Every rank scores the whole split: the accuracies are the same as on one device.
        return DataLoader(self.val_set, batch_size=self.batch_size, num_workers=self.workers)
