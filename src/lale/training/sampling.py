"""Deterministic, resumable training batches (single process or DDP).

Every epoch's order is a function of ``(seed, epoch)`` alone, each rank takes its own shard,
and every sample carries a seed of its own for its random crop. The loader reports how many
batches of the current epoch were trained (Lightning stores that in its checkpoints through
the ``state_dict`` / ``load_state_dict`` interface), and after a restart it skips exactly those:
training resumed in the middle of an epoch sees the same batches, in the same order, with the
same crops, as a run that never stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

SampleKey = tuple[int, int]  # (dataset index, crop seed)


class CropSource(Protocol):
    """What :func:`seeded_crops` draws from (a training-mode ``SegmentationDataset``)."""

    def __len__(self) -> int: ...

    def sample(self, index: int, seed: int) -> tuple[Tensor, Tensor]: ...


def seeded_crops(dataset: CropSource, count: int, seed: int) -> list[Tensor]:
    """``count`` raw image crops that depend on ``seed`` alone.

    Images are taken in a seeded random order (from the start again when ``count`` exceeds
    them), one crop each, its position drawn from ``(seed, i)``; masks are dropped. Used for
    int8 calibration and for re-estimating BatchNorm statistics.
    """
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if len(dataset) == 0:
        raise ValueError("no images to draw crops from")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return [dataset.sample(order[i % len(order)], seed * 1_000_003 + i)[0] for i in range(count)]


def mix_seed(*values: int) -> int:
    """A 63-bit seed that depends on every value (SplitMix64-style mixing)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h ^= (int(v) + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class EpochBatchSampler(Sampler[list[SampleKey]]):
    """Shuffled batches of ``(index, crop_seed)`` keys, the same for the same ``(seed, epoch)``.

    The permutation is split across ``num_replicas`` ranks like ``DistributedSampler`` (padded by
    wrapping around so every rank runs the same number of steps, as DDP needs).

    Args:
        size: Number of samples in the dataset.
        batch_size: Samples per batch (per rank).
        seed: Run seed.
        num_replicas: Number of ranks.
        rank: This rank.
        drop_last: Drop a last incomplete batch.
        samples_per_epoch: Samples (random crops) per epoch; ``None``: one per image. More
            than the dataset size repeats images within the epoch, each time with a crop seed
            of its own, so a few big tiles contribute more than one crop each per epoch.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        samples_per_epoch: int | None = None,
    ) -> None:
        if size < 1 or batch_size < 1:
            raise ValueError(f"need samples and a positive batch size, got {size}, {batch_size}")
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be positive, got {samples_per_epoch}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.num_replicas, self.rank, self.drop_last = num_replicas, rank, drop_last
        self.samples = size if samples_per_epoch is None else samples_per_epoch
        self.epoch = 0
        self.skip = 0  # batches of self.epoch already trained before a restart
        # Lightning calls ``batch_sampler.sampler.set_epoch(epoch)`` before each epoch.
        self.sampler = _EpochHandle(self)

    @property
    def per_rank(self) -> int:
        return math.ceil(self.samples / self.num_replicas)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch."""
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.per_rank
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def keys(self) -> list[SampleKey]:
        """This rank's ``(index, crop_seed)`` keys of the current epoch, in order."""
        keys: list[SampleKey] = []
        for r in range(math.ceil(self.samples / self.size)):  # one pass over the images each
            seeds = (self.seed, self.epoch) if r == 0 else (self.seed, self.epoch, -r)
            g = torch.Generator().manual_seed(mix_seed(*seeds))
            order = torch.randperm(self.size, generator=g).tolist()
            keys += [(i, mix_seed(*seeds, i)) for i in order]
        keys = keys[: self.samples]
        total = self.per_rank * self.num_replicas
        keys = (keys * math.ceil(total / self.samples))[:total]
        return keys[self.rank : total : self.num_replicas]

    def __iter__(self) -> Iterator[list[SampleKey]]:
        keys = self.keys()
        for b in range(self.skip, len(self)):
            yield keys[b * self.batch_size : (b + 1) * self.batch_size]


class _EpochHandle:
    """What Lightning finds at ``batch_sampler.sampler``: forwards ``set_epoch``."""

    def __init__(self, owner: EpochBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


class ResumableLoader(DataLoader[Any]):
    """A DataLoader over an :class:`EpochBatchSampler` that Lightning can checkpoint.

    ``consumed`` is the number of batches of the current epoch that finished a training step;
    the training module sets it at each batch start (``batch_idx + 1``), so a checkpoint written
    at the end of that batch records it as done, whatever the prefetching.
    """

    batch_sampler: EpochBatchSampler

    def __init__(self, dataset: Dataset[Any], batch_sampler: EpochBatchSampler, **kwargs: Any):
        generator = torch.Generator().manual_seed(mix_seed(batch_sampler.seed, 1))
        super().__init__(dataset, batch_sampler=batch_sampler, generator=generator, **kwargs)
        self.consumed = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.epoch = int(state["epoch"])
        self.batch_sampler.skip = int(state["consumed"])
        self.consumed = int(state["consumed"])
