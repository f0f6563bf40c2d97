"""The LightningModule of ``lale pretrain``: a timm LALE classifier under timm's recipe pieces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lale.errors import UsageError
from lale.training.safety import TrainingError
from lale.training.sampling import ResumableLoader, mix_seed

__all__ = ["PretrainRecipe", "PretrainTask", "evaluate_classifier"]


@dataclass(frozen=True)
class PretrainRecipe:
    """timm's classification recipe, scaled down by default for small ImageFolders.

    Attributes:
        epochs: Training epochs.
        batch_size: Images per step and device (even, for Mixup).
        lr: AdamW peak learning rate.
        weight_decay: AdamW weight decay (not on norms, biases and scalars).
        warmup_epochs: Linear warm-up from ``warmup_lr``, then cosine to ``min_lr``.
        warmup_lr: Learning rate at the first update.
        min_lr: Learning rate at the end of the cosine.
        mixup: Mixup alpha (0: off).
        cutmix: CutMix alpha (0: off); with both, each batch takes one of them at random.
        smoothing: Label smoothing.
        drop_path_rate: Stochastic depth over the encoder's blocks.
        grad_clip: Clip the gradient norm to this (``None``: no clipping).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 2
    warmup_lr: float = 1e-5
    min_lr: float = 1e-5
    mixup: float = 0.8
    cutmix: float = 1.0
    smoothing: float = 0.1
    drop_path_rate: float = 0.1
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        if (self.mixup > 0 or self.cutmix > 0) and self.batch_size % 2:
            raise UsageError(f"Mixup/CutMix need an even batch size, got {self.batch_size}")


class PretrainTask(L.LightningModule):
    """A timm-registered LALE classifier trained with timm's recipe pieces."""

    def __init__(
        self, model: str, in_chans: int, num_classes: int, recipe: PretrainRecipe, seed: int
    ) -> None:
        super().__init__()
        import timm
        from timm.data import Mixup
        from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

        self.recipe, self.seed = recipe, seed
        self.net = timm.create_model(
            model, num_classes=num_classes, in_chans=in_chans, drop_path_rate=recipe.drop_path_rate
        )
        self.mixup = None
        self.train_loss: nn.Module
        if recipe.mixup > 0 or recipe.cutmix > 0:
            self.mixup = Mixup(
                mixup_alpha=recipe.mixup,
                cutmix_alpha=recipe.cutmix,
                label_smoothing=recipe.smoothing,
                num_classes=num_classes,
            )
            self.train_loss = SoftTargetCrossEntropy()
        elif recipe.smoothing > 0:
            self.train_loss = LabelSmoothingCrossEntropy(recipe.smoothing)
        else:
            self.train_loss = nn.CrossEntropyLoss()
        self.top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.mean_loss = MeanMetric()
        self.steps_per_epoch = 1

    def on_train_start(self) -> None:
        # A checkpoint written at a batch end can precede Lightning's scheduler update of that
        # step; set the learning rate of the next update from the step count, as timm does.
        for config in self.trainer.lr_scheduler_configs:
            config.scheduler.step_update(num_updates=self.global_step)  # type: ignore[union-attr]

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        loader = self.trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.consumed = batch_idx + 1

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        image, target = batch
        seed = mix_seed(self.seed, self.current_epoch, batch_idx, self.global_rank)
        torch.manual_seed(seed)  # stochastic depth, the same after a resume
        soft: Tensor = target
        if self.mixup is not None:  # timm's Mixup draws from NumPy's global generator
            state = np.random.get_state()
            np.random.seed(seed % 2**32)
            image, soft = self.mixup(image, target)
            np.random.set_state(state)
        loss: Tensor = self.train_loss(self.net(image), soft)
        if not torch.isfinite(loss):
            raise TrainingError(
                f"training loss became {loss.item()} at step {self.global_step}; lower --lr"
            )
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        self.mean_loss.update(loss.detach())
        return loss

    def on_train_epoch_start(self) -> None:
        self.mean_loss.reset()

    def on_validation_epoch_end(self) -> None:
        if self.mean_loss.update_count:  # the training loss of the epoch that just ended
            self.log("train/loss", self.mean_loss.compute())

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        image, target = batch
        logits = self.net(image)
        self.log("val/loss", nn.functional.cross_entropy(logits, target), sync_dist=True)
        self.top1.update(logits, target)
        self.top5.update(logits, target)
        self.log("val/top1", self.top1, on_epoch=True, prog_bar=True)
        self.log("val/top5", self.top5, on_epoch=True)

    def configure_optimizers(self) -> Any:
        from timm.optim import create_optimizer_v2
        from timm.scheduler import create_scheduler_v2

        r = self.recipe
        optimizer = create_optimizer_v2(self.net, "adamw", lr=r.lr, weight_decay=r.weight_decay)
        scheduler, _ = create_scheduler_v2(
            optimizer,
            "cosine",
            num_epochs=r.epochs,
            warmup_epochs=r.warmup_epochs,
            warmup_lr=r.warmup_lr,
            min_lr=r.min_lr,
            step_on_epochs=False,
            updates_per_epoch=self.steps_per_epoch,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        scheduler.step_update(num_updates=self.global_step)  # timm's per-update stepping


@torch.no_grad()
def evaluate_classifier(net: nn.Module, loader: Any, num_classes: int) -> tuple[float, float]:
    """Top-1 and top-5 accuracy (top-k with k = classes when there are fewer than 5)."""
    top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
    topk = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    for image, target in loader:
        logits = net(image.to(device)).float().cpu()
        top1.update(logits, target)
        topk.update(logits, target)
    net.train(was_training)
    return float(top1.compute()), float(topk.compute())
