"""The LightningModule: any registered model, the ARAS400k recipe, metrics over whole splits."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from lale.data.schema import ClassSchema
from lale.data.transforms import BatchTransform, normalize_input
from lale.errors import WorkFailedError
from lale.models import create_model
from lale.models.padding import crop_to
from lale.recipe import Recipe
from lale.training.losses import build_loss
from lale.training.metrics import SegmentationMetrics, scalar_scores
from lale.training.sampling import ResumableLoader, mix_seed

MONITOR = "val/macro_f1"  # early stopping, best weights and ReduceLROnPlateau all follow it
AUX_LOSS_WEIGHT = 0.4
"""Weight of an auxiliary head's loss: UNetFormer's ``L_main + 0.4 · L_aux`` (Wang et al., 2022)."""


def take_aux_logits(net: nn.Module) -> Tensor | None:
    """Auxiliary logits that ``net`` (or the network an ``AnySize`` wrapper holds as ``.model``)
    left on ``aux_logits`` in its last training-mode forward; cleared once read."""
    for module in (net, getattr(net, "model", None)):
        aux = getattr(module, "aux_logits", None)
        if isinstance(aux, Tensor):
            module.aux_logits = None  # type: ignore[union-attr]
            return aux
    return None


def per_image_confusion(pred: Tensor, target: Tensor, schema: ClassSchema) -> Tensor:
    """``B×K×K`` confusion matrices (rows truth) of a batch, ignore pixels left out."""
    k = schema.num_classes
    valid = target != schema.ignore_index
    image = torch.arange(pred.shape[0], device=pred.device).view(-1, 1, 1).expand_as(pred)
    codes = (image * k * k + target * k + pred)[valid]
    counts = torch.bincount(codes, minlength=pred.shape[0] * k * k)
    return counts.view(pred.shape[0], k, k)


class NonFiniteLossError(WorkFailedError):
    """The training loss became NaN or infinite; the run stops before the weights are touched."""


class SegmentationTask(L.LightningModule):
    """Train, validate and test one segmentation network.

    Images arrive raw (uint8 or float samples) and are augmented and normalised on the device
    that trains (:mod:`lale.data.transforms`). The augmentation draws of a batch depend only on
    ``(seed, epoch, batch index, rank)``, and the global RNG state travels with checkpoints, so a
    resumed run repeats exactly what an uninterrupted one does.

    Args:
        model: Registered model name.
        model_kwargs: Keyword arguments for :func:`lale.models.create_model`.
        schema: Class schema (classes, ignore index, image format).
        recipe: Optimisation settings.
        seed: Run seed.
        pretrained: Start a baseline's encoder from its ImageNet weights (see
            :func:`lale.models.create_model`).
    """

    def __init__(
        self,
        model: str,
        model_kwargs: dict[str, Any],
        schema: ClassSchema,
        recipe: Recipe,
        seed: int = 0,
        pretrained: bool = False,
    ) -> None:
        super().__init__()
        self.schema, self.recipe, self.seed = schema, recipe, seed
        channels = schema.image.channels
        self.net = create_model(
            model, schema.num_classes, channels, pretrained=pretrained, **model_kwargs
        )
        self.loss_fn = build_loss(recipe.loss, recipe.class_weights, schema.ignore_index)
        self.train_transform = BatchTransform(schema.image, recipe.augment)
        names = list(schema.names)
        self.val_metrics = SegmentationMetrics(schema.num_classes, schema.ignore_index, names)
        self.test_metrics = SegmentationMetrics(schema.num_classes, schema.ignore_index, names)
        self.train_loss = MeanMetric()
        self.train_loss.persistent(True)  # a mid-epoch resume keeps the running mean
        self.test_scores: dict[str, Any] | None = None
        self.test_per_image: Tensor | None = None
        """``N×K×K`` confusion matrix of every test image, in split order (one process only)."""
        self._per_image: list[Tensor] = []
        self._tick: float | None = None
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict[str, Any] | None = None

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    # -- training ---------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        loader = self.trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.consumed = batch_idx + 1  # done once this step's checkpoint is written

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        image, mask = batch
        seed = mix_seed(self.seed, self.current_epoch, batch_idx, self.global_rank)
        self.train_transform.generator = torch.Generator().manual_seed(seed)
        x, y = self.train_transform(image, mask)
        loss = self.loss_fn(self.net(x), y)
        aux = take_aux_logits(self.net)
        if aux is not None:  # cropped like the main logits: the padding is at the bottom/right
            loss = loss + AUX_LOSS_WEIGHT * self.loss_fn(crop_to(aux, *y.shape[-2:]), y)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss became {loss.item()} at epoch {self.current_epoch}, batch "
                f"{batch_idx} (step {self.global_step}); stopped before updating the weights"
            )
        now = time.perf_counter()
        if self._tick is not None:
            rate = image.shape[0] * self.trainer.world_size / max(now - self._tick, 1e-9)
            self.log("img/s", rate, prog_bar=True, on_step=True, on_epoch=False)
        self._tick = now
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        self.train_loss.update(loss.detach())
        return loss

    def on_train_epoch_start(self) -> None:
        self._tick = None
        self.train_loss.reset()

    # -- evaluation -------------------------------------------------------------------------
    def _evaluate(self, batch: tuple[Tensor, Tensor], metrics: SegmentationMetrics) -> Tensor:
        image, mask = batch
        x, y = normalize_input(image, self.schema.image), mask.long()
        logits = self.net(x)
        metrics.update(logits, y)
        return self.loss_fn(logits, y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss = self._evaluate(batch, self.val_metrics)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=batch[0].shape[0])

    def on_validation_epoch_end(self) -> None:
        scores = self.val_metrics.compute()  # summed over ranks by torchmetrics
        self.log_dict(scalar_scores(scores, "val/"), prog_bar=False)
        if self.train_loss.update_count:  # not during a validation-only run
            self.log("train/loss", self.train_loss.compute())
        self.log("val_f1", scores["macro_f1"], prog_bar=True)
        self.val_metrics.reset()
        fitting = self.trainer.state.fn == "fit" and not self.trainer.sanity_checking
        if fitting and self.plateau is not None:
            self.plateau.step(float(scores["macro_f1"]))

    def on_test_epoch_start(self) -> None:
        self._per_image = []

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        image, mask = batch
        x, y = normalize_input(image, self.schema.image), mask.long()
        logits = self.net(x)
        self.test_metrics.update(logits, y)
        self._per_image.append(per_image_confusion(logits.argmax(1), y, self.schema))

    def on_test_epoch_end(self) -> None:
        self.test_scores = self.test_metrics.scores()
        self.test_metrics.reset()
        # One process sees every test image in order; under DDP each rank sees a share.
        single = self.trainer.world_size == 1 and bool(self._per_image)
        self.test_per_image = torch.cat(self._per_image).cpu() if single else None
        self._per_image = []

    # -- optimisation -----------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        r = self.recipe
        optimizer = torch.optim.AdamW(self.parameters(), lr=r.lr, weight_decay=r.weight_decay)
        # Stepped by this module right after validation (not by Lightning after the epoch), so
        # the checkpoint written at validation end already holds the updated scheduler.
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", patience=r.plateau_patience, factor=r.plateau_factor
        )
        if self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
            self._plateau_state = None
        return optimizer

    # -- exact resumption -------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.plateau is not None:
            checkpoint["plateau"] = self.plateau.state_dict()
        checkpoint["rng_cpu"] = torch.get_rng_state()
        if torch.cuda.is_available():
            checkpoint["rng_cuda"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._plateau_state = checkpoint.get("plateau")  # applied in configure_optimizers
        if "rng_cpu" in checkpoint:
            torch.set_rng_state(checkpoint["rng_cpu"])
        if "rng_cuda" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["rng_cuda"])
