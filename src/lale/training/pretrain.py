"""Classification pretraining of a LALE encoder on an ImageFolder: what ``lale pretrain`` runs.

The recipe is timm's, assembled from its library pieces on a Lightning loop: ``create_transform``
with RandAugment and random erasing (:mod:`lale.training.pretrain_data`), Mixup/CutMix with
soft-target cross-entropy (label-smoothed cross-entropy without them), ``create_optimizer_v2``
(AdamW, no decay on norms and biases) and a cosine schedule with warm-up from
``create_scheduler_v2``, stepped at every update. A run resumes exactly: batches, crops,
augmentations, Mixup draws and stochastic depth depend on ``(seed, epoch, batch)`` alone.

The run directory is one timm can read (``timm.create_model("local-dir:RUN")``):
``config.json`` (timm's: architecture, classes, mean/std, input size), ``model.safetensors``
(the classifier of the best validation epoch by top-1), plus ``encoder.safetensors`` (its encoder
alone, under the segmentation network's names), ``val_metrics.json`` (top-1/top-5),
``pretrain.json`` (what rebuilds the run), ``metrics.csv`` and ``checkpoints/last.ckpt``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from torch import nn

from lale import __version__
from lale.atomic import write_json_atomic
from lale.output_paths import check_output_dir
from lale.run_layout import CHECKPOINT, FIGURES, WEIGHTS
from lale.training.callbacks import (
    AtomicCheckpointIO,
    BestWeights,
    EpochTable,
    ResumeCheckpoint,
    StopOnSignal,
)
from lale.training.figures import plot_history
from lale.training.hardware import default_precision, leave_process_group
from lale.training.pretrain_data import AugmentSpec, ImageFolderData
from lale.training.pretrain_task import PretrainRecipe, PretrainTask, evaluate_classifier
from lale.training.rundir import RunLock, claim_new
from lale.training.safety import TrainingError, stopping
from lale.weights import load_weights, save_weights

__all__ = [
    "ENCODER_WEIGHTS",
    "PRETRAIN_RECORD",
    "PretrainOptions",
    "PretrainRecipe",
    "is_pretrain_run",
    "pretrain",
    "resume_pretrain",
]

Say = Callable[[str], None]
PRETRAIN_RECORD = "pretrain.json"
"""What rebuilds a pretraining run (model, classes, data, recipe, augmentation, seed)."""
ENCODER_WEIGHTS = "encoder.safetensors"
"""The best classifier's encoder, under the segmentation network's tensor names."""
VAL_METRICS = "val_metrics.json"
TIMM_CONFIG = "config.json"
MONITOR = "val/top1"


@dataclass(frozen=True)
class PretrainOptions:
    """One pretraining run.

    Attributes:
        data: ImageFolder root with ``train/`` and ``val/``.
        out: Run directory to create.
        model: A LALE variant registered with timm (``lale_s1``, ...); any timm classifier
            trains too (for comparisons), without ``encoder.safetensors``.
        in_chans: Input bands.
        recipe: Optimisation settings.
        augment: Transforms.
        seed: Run seed.
        workers: DataLoader workers.
        accelerator: Lightning accelerator.
        devices: Devices per node.
        num_nodes: Nodes.
        strategy: Lightning strategy.
        precision: ``None``: ``"bf16-mixed"`` on GPU, else ``"32-true"``.
        checkpoint_every: Save the resumable state every this many steps (and each epoch).
        max_steps: Stop after this many steps (``-1``: no limit).
        progress: Show the progress bar.
        callbacks: Extra Lightning callbacks.
    """

    data: Path
    out: Path
    model: str = "lale_s1"
    in_chans: int = 3
    recipe: PretrainRecipe = field(default_factory=PretrainRecipe)
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    seed: int = 0
    workers: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str | None = None
    checkpoint_every: int = 50
    max_steps: int = -1
    progress: bool = True
    callbacks: tuple[L.Callback, ...] = ()


def is_pretrain_run(path: Path) -> bool:
    """Whether ``path`` is a ``lale pretrain`` run directory."""
    return path.is_dir() and (path / PRETRAIN_RECORD).is_file()


def _timm_config(options: PretrainOptions, net: Any, classes: list[str]) -> dict[str, Any]:
    """timm's ``config.json`` for the run (``local-dir:`` and ``hf-hub:`` read it)."""
    cfg = dict(net.pretrained_cfg)
    a = options.augment
    cfg.update(
        input_size=(options.in_chans, a.img_size, a.img_size),
        mean=list(a.mean),
        std=list(a.std),
        crop_pct=a.crop_pct,
        interpolation=a.interpolation,
        num_classes=len(classes),
    )
    keep: tuple[str, ...] = ("input_size", "mean", "std", "crop_pct", "interpolation")
    keep += ("num_classes",)
    keep += ("first_conv", "classifier", "license", "pool_size", "crop_mode")
    return {
        "architecture": options.model,
        "num_classes": len(classes),
        "num_features": net.num_features,
        "global_pool": "avg",
        "model_args": {"in_chans": options.in_chans},
        "label_names": classes,
        "pretrained_cfg": {k: v for k, v in cfg.items() if k in keep},
    }


def _record(options: PretrainOptions, classes: list[str]) -> dict[str, Any]:
    return {
        "kind": "pretrain",
        "lale_version": __version__,
        "model": options.model,
        "in_chans": options.in_chans,
        "classes": classes,
        "data": str(options.data),
        "seed": options.seed,
        "checkpoint_every": options.checkpoint_every,
        "recipe": asdict(options.recipe),
        "augment": asdict(options.augment),
    }


def pretrain(options: PretrainOptions, say: Say = print) -> dict[str, Any]:
    """Pretrain ``options.model`` on the ImageFolder ``options.data`` into ``options.out``.

    Returns:
        The validation scores of the best epoch (``val_metrics.json``).

    Raises:
        DataError: A split is missing, empty or unreadable, or the splits' classes differ.
        TrainingError: The run directory holds a run already.
    """
    leader = getattr(rank_zero_only, "rank", 0) == 0
    if leader:
        check_output_dir(options.out, create=False)
        claim_new(options.out, clear=False)
    data = _data(options)
    with RunLock(options.out) if leader else nullcontext():
        if leader:
            claim_new(options.out)
            write_json_atomic(options.out / PRETRAIN_RECORD, _record(options, data.classes))
        return _fit(options, data, ckpt=None, say=say)


def resume_pretrain(run_dir: Path, say: Say = print, **overrides: Any) -> dict[str, Any]:
    """Continue a pretraining run from its last checkpoint, exactly where it stopped.

    Args:
        run_dir: The run directory.
        say: Where messages go.
        **overrides: Hardware options to change (``workers``, ``devices``, ``accelerator``,
            ``num_nodes``, ``strategy``, ``precision``, ``progress``, ``max_steps``,
            ``callbacks``).

    Raises:
        TrainingError: No pretraining record or no resumable state in ``run_dir``.
    """
    path = run_dir / PRETRAIN_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        options = PretrainOptions(
            data=Path(record["data"]),
            out=run_dir,
            model=record["model"],
            in_chans=int(record["in_chans"]),
            recipe=PretrainRecipe(**record["recipe"]),
            augment=AugmentSpec(**{k: _untuple(v) for k, v in record["augment"].items()}),
            seed=int(record["seed"]),
            checkpoint_every=int(record["checkpoint_every"]),
            **overrides,
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TrainingError(f"{path}: not a readable pretraining record ({err})") from None
    ckpt = run_dir / CHECKPOINT
    if not ckpt.is_file():
        raise TrainingError(f"{ckpt}: no resumable state (the run stopped before its first save)")
    data = _data(options)
    if data.classes != record["classes"]:
        raise TrainingError(f"{options.data / 'train'}: its classes changed since the run began")
    with RunLock(run_dir) if getattr(rank_zero_only, "rank", 0) == 0 else nullcontext():
        return _fit(options, data, ckpt=ckpt, say=say)


def _untuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _data(options: PretrainOptions) -> ImageFolderData:
    mixing = options.recipe.mixup > 0 or options.recipe.cutmix > 0
    return ImageFolderData(
        options.data,
        options.augment,
        options.recipe.batch_size,
        options.seed,
        options.workers,
        drop_last=mixing,
    )


def _fit(
    options: PretrainOptions, data: ImageFolderData, ckpt: Path | None, say: Say
) -> dict[str, Any]:
    out = options.out
    L.seed_everything(options.seed, workers=True, verbose=False)
    task = PretrainTask(
        options.model, options.in_chans, len(data.classes), options.recipe, options.seed
    )
    world = options.num_nodes * (options.devices if isinstance(options.devices, int) else 1)
    task.steps_per_epoch = data.batches_per_epoch(world)
    best = BestWeights(out, monitor=MONITOR)
    table = EpochTable(out, columns=("epoch", "step", "lr", "train/loss", "val/loss", MONITOR))
    callbacks: list[L.Callback] = [best, table, *options.callbacks]
    if options.progress:
        callbacks.append(RichProgressBar(leave=True))
    callbacks.append(ResumeCheckpoint(out, options.checkpoint_every))
    stop = StopOnSignal(out)
    callbacks.append(stop)
    trainer = L.Trainer(
        accelerator=options.accelerator,
        devices=options.devices,
        num_nodes=options.num_nodes,
        strategy=options.strategy,
        precision=default_precision(options.precision, options.accelerator),  # type: ignore[arg-type]
        max_epochs=options.recipe.epochs,
        max_steps=options.max_steps,
        gradient_clip_val=options.recipe.grad_clip,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=options.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        default_root_dir=out,
    )
    say(
        f"pretraining {options.model} on {len(data.train_set)} images of {len(data.classes)} "
        f"classes ({len(data.val_set)} val), {task.steps_per_epoch} steps per epoch"
    )
    with stopping(stop, out, resume="lale pretrain --resume"):
        trainer.fit(task, datamodule=data, ckpt_path=ckpt, weights_only=True if ckpt else None)
        if trainer.interrupted:
            raise TrainingError(f"interrupted; continue with: lale pretrain --resume {out}")
        if best.best is None:  # the step budget ended inside the first epoch
            trainer.validate(task, datamodule=data, verbose=False)
    if best.best is None or not (out / WEIGHTS).is_file():
        raise TrainingError(f"validation gave no top-1, so no weights were written to {out}")
    load_weights(task.net, out / WEIGHTS)
    k = min(5, len(data.classes))
    top1, topk = evaluate_classifier(task.net, data.val_dataloader(), len(data.classes))
    result = {
        "top1": round(top1, 6),
        f"top{k}": round(topk, 6),
        "epoch": best.best_epoch,
        "val_images": len(data.val_set),
        "classes": len(data.classes),
    }
    if trainer.is_global_zero:
        if isinstance(encoder := getattr(task.net, "encoder", None), nn.Module):  # LALE's
            save_weights(nn.ModuleDict({"encoder": encoder}), out / ENCODER_WEIGHTS)
        write_json_atomic(out / TIMM_CONFIG, _timm_config(options, task.net, data.classes))
        write_json_atomic(out / VAL_METRICS, result)
        plot_history(table.rows, out / FIGURES["history"], metric=MONITOR)
        say(f"val top-1 {result['top1']:.4f}, top-{k} {result[f'top{k}']:.4f} → {out}")
    leave_process_group()
    return result
