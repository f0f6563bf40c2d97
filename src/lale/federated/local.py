"""What one site does in a round: train the global model locally, or score it on a split.

Local training is lale's own: :class:`~lale.training.module.SegmentationTask` (the recipe's
loss, augmentation and optimiser) under a Lightning trainer, on the site's
:class:`~lale.training.datamodule.LandCoverDataModule`, for a fixed number of steps or epochs.
FedProx adds its proximal term to that loss (:class:`ProximalTask`). The optimiser starts
afresh every round; the site's data order and augmentation depend on ``(seed, round, site)``.
"""

from __future__ import annotations

import logging
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from lale.data.collate import PadCollate
from lale.data.dataset import SegmentationDataset
from lale.data.schema import ClassSchema
from lale.data.transforms import normalize_input
from lale.federated.options import ClientSpec
from lale.training.datamodule import LandCoverDataModule
from lale.training.hardware import default_precision
from lale.training.metrics import SegmentationMetrics
from lale.training.module import SegmentationTask
from lale.training.safety import check_data
from lale.training.sampling import mix_seed

__all__ = [
    "LocalResult",
    "ProximalTask",
    "batch_norm_keys",
    "build_task",
    "score_split",
    "shared_state",
    "site_seed",
    "train_locally",
    "travels",
]

log = logging.getLogger(__name__)


class ProximalTask(SegmentationTask):
    """:class:`SegmentationTask` whose loss adds FedProx's ``mu/2 · ‖w − w_global‖²``.

    Call :meth:`anchor` once the global weights are loaded; with ``mu == 0`` it is the task.
    """

    def __init__(self, *args: Any, mu: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mu = mu
        self._anchor: list[Tensor] = []
        self.last_proximal = 0.0

    def anchor(self) -> None:
        """Fix ``w_global``: the parameters as they are now."""
        self._anchor = [p.detach().clone() for p in self.net.parameters()]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = super().training_step(batch, batch_idx)
        if self.mu > 0 and self._anchor:
            params = self.net.parameters()
            proximal = sum(
                ((p - a.to(p.device)) ** 2).sum() for p, a in zip(params, self._anchor, strict=True)
            )
            self.last_proximal = float(proximal)
            loss = loss + self.mu / 2 * proximal
        return loss


def site_seed(seed: int, server_round: int, site: str) -> int:
    """The seed of ``site``'s data order and augmentation in ``server_round``."""
    return mix_seed(seed, server_round, zlib.crc32(site.encode())) % 2**31


def build_task(spec: ClientSpec, seed: int, mu: float = 0.0) -> ProximalTask:
    """The spec's model in a (proximal) training task; its weights are to be loaded."""
    schema = ClassSchema.from_dict(spec.schema)
    return ProximalTask(spec.model, spec.model_kwargs, schema, spec.recipe_object(), seed, mu=mu)


def batch_norm_keys(net: nn.Module) -> list[str]:
    """State-dict keys of every BatchNorm layer of ``net`` (weights, biases, statistics)."""
    prefixes = [
        f"{name}."
        for name, m in net.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    return [k for k in net.state_dict() if any(k.startswith(p) for p in prefixes)]


@dataclass(frozen=True)
class LocalResult:
    """What a site's local training reports."""

    examples: int
    steps: int
    loss: float
    seconds: float


def site_data(root: Any, spec: ClientSpec, seed: int) -> LandCoverDataModule:
    """The site's data module (no worker processes: sized for one client at a time)."""
    recipe = spec.recipe_object()
    return LandCoverDataModule(
        root,
        ClassSchema.from_dict(spec.schema),
        batch_size=recipe.batch_size,
        crop_size=recipe.crop_size,
        workers=0,
        seed=seed,
        strict=spec.strict,
        samples_per_epoch=recipe.samples_per_epoch,
    )


def check_site(root: Any, spec: ClientSpec) -> dict[str, int]:
    """Check the site's splits (headers, masks against the schema); its patch counts.

    Raises:
        DataError: A file is unreadable, or the masks hold colours the schema does not label.
    """
    data = site_data(root, spec, spec.seed)
    check_data(data, data.root, spec.max_unknown, lambda message: log.warning(message))
    return {split: len(data.split(split)) for split in ("train", "val", "test")}


def train_locally(task: ProximalTask, root: Any, spec: ClientSpec, seed: int) -> LocalResult:
    """Train ``task`` on the site's training split for the spec's local budget."""
    recipe = spec.recipe_object()
    data = site_data(root, spec, seed)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lale-site-") as scratch:
        trainer = L.Trainer(
            accelerator=spec.accelerator,
            devices=1,
            precision=default_precision(spec.precision, spec.accelerator),  # type: ignore[arg-type]
            max_steps=spec.local_steps if spec.local_steps is not None else -1,
            max_epochs=spec.local_epochs if spec.local_epochs is not None else -1,
            gradient_clip_val=recipe.grad_clip,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
            default_root_dir=scratch,
        )
        trainer.fit(task, datamodule=data)
    loss = float(task.train_loss.compute()) if task.train_loss.update_count else float("nan")
    return LocalResult(
        examples=len(data.split("train")),
        steps=int(trainer.global_step),
        loss=loss,
        seconds=time.perf_counter() - start,
    )


def score_split(net: nn.Module, root: Any, spec: ClientSpec, split: str) -> tuple[np.ndarray, int]:
    """The ``K×K`` confusion matrix (rows truth) of ``net`` on the site's ``split``; images."""
    schema = ClassSchema.from_dict(spec.schema)
    dataset = SegmentationDataset(root, split, schema, mode="eval", strict=spec.strict)
    recipe = spec.recipe_object()
    loader = DataLoader(
        dataset, batch_size=recipe.batch_size, collate_fn=PadCollate(schema.ignore_index)
    )
    metrics = SegmentationMetrics(schema.num_classes, schema.ignore_index, validate_args=False)
    device = next(net.parameters()).device
    metrics = metrics.to(device)
    net.eval()
    with torch.inference_mode():
        for image, mask in loader:
            x = normalize_input(image.to(device), schema.image)
            metrics.update(net(x), mask.to(device).long())
    return metrics.confmat.cpu().numpy().astype(np.int64), len(dataset)


def travels(key: str) -> bool:
    """Whether a state-dict entry is sent: BatchNorm's ``num_batches_tracked`` counters stay."""
    return not key.endswith("num_batches_tracked")


def shared_state(net: nn.Module) -> dict[str, Tensor]:
    """The tensors of ``net`` that travel, on the CPU."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items() if travels(k)}


def load_state(net: nn.Module, state: Mapping[str, Tensor], keep: Mapping[str, Tensor]) -> None:
    """Load the global ``state`` into ``net``, then this site's own tensors ``keep`` (FedBN).

    Entries that do not travel (:func:`travels`) keep their current values.

    Raises:
        ValueError: The global state does not match the model (names or shapes).
    """
    own = net.state_dict()
    missing = sorted(k for k in set(own) - set(state) - set(keep) if travels(k))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise ValueError(
            f"the global model does not match this site's {type(net).__name__}: "
            f"{len(missing)} tensors missing, {len(extra)} unknown"
        )
    merged = dict(own)
    merged.update({k: state[k].to(own[k].dtype).reshape(own[k].shape) for k in own if k in state})
    merged.update({k: v for k, v in keep.items() if k in own})
    net.load_state_dict(merged, strict=True)
