"""Train a model into a run directory, resume it, and test it: what ``lale train`` runs.

The data are checked first (schema, splits, file headers, enough labelled mask pixels) and only
then is the run directory locked and ``config.json`` written, so an interrupted run can always
be resumed with ``lale train --resume RUN_DIR``; the weights, checkpoint, metrics and figures
follow (docs/design.md#run-directories). A training that returns has written its weights and
test scores; anything else raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, RichProgressBar
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from lale.atomic import write_json_atomic
from lale.data.folder import count_class_pixels, data_scaling
from lale.data.schema import ClassSchema, resolve_schema
from lale.models.registry import ensure_model_weights
from lale.models.transfer import is_hub_source, load_matching, read_donor, resolve_source
from lale.output_paths import check_output_dir
from lale.recipe import Recipe, RunRecipe
from lale.run_layout import CHECKPOINT, SKIPPED_PAIRS, TEST_METRICS, WEIGHTS
from lale.runs import (
    CONFIG_NAME,
    RunConfig,
    RunError,
    load_config,
    load_run,
    load_weights,
    save_config,
)
from lale.training.bn_stats import PreciseBatchNorm, has_batch_norm
from lale.training.callbacks import (
    AtomicCheckpointIO,
    BestWeights,
    EpochTable,
    ResumeCheckpoint,
    StopOnSignal,
)
from lale.training.curve import BudgetCurve
from lale.training.datamodule import LandCoverDataModule
from lale.training.hardware import default_precision, leave_process_group
from lale.training.losses import class_weights_from_counts
from lale.training.module import MONITOR, NonFiniteLossError, SegmentationTask
from lale.training.options import TrainOptions, TrainResult
from lale.training.outputs import write_outputs, write_per_image
from lale.training.pretrain import is_pretrain_run
from lale.training.rundir import RunLock, claim_new
from lale.training.safety import (
    TrainingError,
    TrainingStopped,
    check_data,
    report_unknown,
    stopping,
)

log = logging.getLogger(__name__)
Say = Callable[[str], None]


def _init_from(task: SegmentationTask, run_dir: Path, say: Say) -> None:
    """Copy every tensor of an earlier run whose name and shape match; report the rest.

    A ``.safetensors`` file instead of a run directory must match the model exactly (names
    and shapes; a one-line error names the first that do not); it is never unpickled. A
    ``lale pretrain`` run or ``hf-hub:ORG/NAME`` gives its encoder (or, for a repository pushed
    from a training run, its whole model): see :mod:`lale.models.transfer`.
    """
    if run_dir.suffix == ".safetensors" and not run_dir.is_dir():
        load_weights(task.net, run_dir)
        say(f"--init {run_dir}: all {len(task.net.state_dict())} tensors taken")
        return
    if is_hub_source(run_dir) or is_pretrain_run(run_dir):
        source = str(run_dir)
        weights = read_donor(resolve_source(source))
        loaded, left = load_matching(task.net, weights)
        what = "encoder" if weights.kind == "encoder" else "model"
        say(
            f"--init {source}: {len(loaded)} of {len(weights.state)} {what} tensors loaded from "
            f"{weights.architecture} ({weights.note}); {len(left)} of this model's "
            f"{len(loaded) + len(left)} start fresh"
        )
        return
    donor, config = load_run(run_dir)
    own = task.net.state_dict()
    taken = {k: v for k, v in donor.state_dict().items() if k in own and own[k].shape == v.shape}
    task.net.load_state_dict(taken, strict=False)
    fresh = sorted(set(own) - set(taken))
    if config.class_schema.get("names") != list(task.schema.names):
        say(f"--init {run_dir}: the class schema differs, so the classifier is re-initialised")
    if fresh:
        shown = ", ".join(fresh[:4]) + (f" and {len(fresh) - 4} more" if len(fresh) > 4 else "")
        say(f"--init {run_dir}: {len(taken)} tensors taken, {len(fresh)} re-initialised: {shown}")


def _bad_record(bad: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    """``skipped_pairs.json``: per split, the pairs ``--skip-bad-pairs`` left out and why."""
    return {split: [{"name": n, "why": why} for n, why in pairs] for split, pairs in bad.items()}


def _options_record(options: TrainOptions, recipe: Recipe) -> RunRecipe:
    return RunRecipe.of(
        recipe,
        data=str(options.data),
        init=None if options.init is None else str(options.init),
        pretrained=options.pretrained,
        checkpoint_every=options.checkpoint_every,
        strict=options.strict,
        skip_bad_pairs=options.skip_bad_pairs,
    )


def train(options: TrainOptions, say: Say = print) -> TrainResult:
    """Train ``options.model`` on ``options.data`` into the new run directory ``options.out``.

    Nothing is written until the data passed their checks; a run directory left by a run that
    never trained (no weights, no checkpoint) is replaced.

    Raises:
        UsageError: ``options.out`` cannot be created.
        TrainingError: The run directory already holds a run, or the loss became NaN.
        TrainingStopped: SIGINT or SIGTERM stopped the run (resumable).
        DataError: Bad dataset input (names the file), or masks the schema does not label.
        RunBusyError: Another process is training into ``options.out``.
    """
    out = options.out
    # Under DDP every rank runs this function (Lightning's launcher starts ranks > 0 as copies of
    # this command once rank 0 is training); only rank 0 checks and writes the run directory.
    leader = getattr(rank_zero_only, "rank", 0) == 0
    if leader:
        check_output_dir(out, create=False)
        claim_new(out, clear=False)
    if options.pretrained:  # fail within seconds, before the data checks
        ensure_model_weights(options.model, options.model_kwargs)
    if options.init is not None and is_hub_source(options.init):
        resolve_source(str(options.init))  # cached, fetched or a one-line error, up front
    schema = resolve_schema(options.data, options.schema)
    data = _data_module(options, schema, options.recipe)
    if leader:
        check_data(data, options.data, options.max_unknown, say)
    recipe = options.recipe
    if options.class_weights == "auto":
        counts = count_class_pixels(options.data, schema)
        weights = class_weights_from_counts(counts, "inverse_sqrt")
        recipe = replace(recipe, class_weights=tuple(round(w, 6) for w in weights))
        say("class weights from the training split: " + ", ".join(f"{w:.3f}" for w in weights))
    config = RunConfig.from_schema(
        options.model,
        schema,
        model_overrides=options.model_kwargs,
        input_size=(recipe.crop_size, recipe.crop_size),
        recipe=_options_record(options, recipe),
        seed=options.seed,
        scaling=data_scaling(options.data),
    )
    L.seed_everything(options.seed, workers=True, verbose=False)
    task = SegmentationTask(
        config.model, config.model_kwargs, schema, recipe, options.seed, options.pretrained
    )
    if options.init is not None:
        _init_from(task, options.init, say)
    with RunLock(out) if leader else nullcontext():
        if leader:
            claim_new(out)
            save_config(out / CONFIG_NAME, config)
            if bad := data.bad_pairs():
                write_json_atomic(out / SKIPPED_PAIRS, _bad_record(bad))
        return _fit(task, data, options, recipe, ckpt=None, say=say)


def _data_module(options: TrainOptions, schema: ClassSchema, recipe: Recipe) -> LandCoverDataModule:
    return LandCoverDataModule(
        options.data,
        schema,
        batch_size=recipe.batch_size,
        crop_size=recipe.crop_size,
        workers=options.workers,
        seed=options.seed,
        strict=options.strict,
        samples_per_epoch=recipe.samples_per_epoch,
        skip_bad_pairs=options.skip_bad_pairs,
    )


def resume(
    run_dir: Path,
    epochs: int | None = None,
    overrides: dict[str, Any] | None = None,
    say: Say = print,
) -> TrainResult:
    """Continue ``run_dir`` from its last checkpoint (exactly where it stopped).

    Args:
        run_dir: The run directory.
        epochs: New maximum number of epochs (to train longer than first planned).
        overrides: Hardware and data-loading options to change (``workers``, ``devices``,
            ``accelerator``, ``num_nodes``, ``strategy``, ``progress``, ``max_steps``,
            ``max_minutes``, ``callbacks``, ``curve``, ``skip_bad_pairs``).

    Raises:
        TrainingError: No resumable state in ``run_dir``.
        RunError: Its config is missing or invalid.
    """
    config = load_config(run_dir / CONFIG_NAME)
    ckpt = run_dir / CHECKPOINT
    if not ckpt.is_file():
        raise TrainingError(f"{ckpt}: no resumable state (the run stopped before its first save)")
    record = config.recipe
    recipe = record.optimisation
    if epochs is not None:
        recipe = replace(recipe, epochs=epochs)
    if record.data is None:
        raise TrainingError(f"{run_dir / CONFIG_NAME}: the run records no dataset (recipe.data)")
    schema = config.schema()
    options = TrainOptions(
        data=Path(record.data),
        out=run_dir,
        model=config.model,
        model_kwargs=config.model_kwargs,
        recipe=recipe,
        seed=config.seed or 0,
        checkpoint_every=record.checkpoint_every,
        strict=record.strict,
        skip_bad_pairs=record.skip_bad_pairs,
        **(overrides or {}),
    )
    task = SegmentationTask(config.model, config.model_kwargs, schema, recipe, options.seed)
    leader = getattr(rank_zero_only, "rank", 0) == 0
    with RunLock(run_dir) if leader else nullcontext():
        if epochs is not None and leader:
            record = _options_record(options, recipe)
            save_config(run_dir / CONFIG_NAME, replace(config, recipe=record))
        data = _data_module(options, schema, recipe)
        return _fit(task, data, options, recipe, ckpt=ckpt, say=say)


def _fit(
    task: SegmentationTask,
    data: LandCoverDataModule,
    options: TrainOptions,
    recipe: Recipe,
    ckpt: Path | None,
    say: Say,
) -> TrainResult:
    out = options.out
    schema = data.schema
    best = BestWeights(out)
    table = EpochTable(out)
    bn_batches = data.fixed_crops(recipe.bn_crops)
    callbacks: list[L.Callback] = []
    if options.curve is not None:  # first: it stops its clock before the others validate
        curve = BudgetCurve(out, options.curve, recipe.bn_stats, bn_batches, recipe.batch_size)
        callbacks.append(curve)
    callbacks += [best, table, *options.callbacks]
    early = None
    if recipe.early_stopping > 0:
        early = EarlyStopping(
            MONITOR, patience=recipe.early_stopping, mode="max", check_on_train_epoch_end=False
        )
        callbacks.append(early)
    if options.progress:
        callbacks.append(RichProgressBar(leave=True))
    if recipe.bn_stats == "recompute" and has_batch_norm(task.net):
        # After BestWeights (which keeps the statistics it scored), before the checkpoint
        # (which gets the running ones back): see lale.training.bn_stats.
        callbacks.append(PreciseBatchNorm(bn_batches))
    callbacks.append(ResumeCheckpoint(out, options.checkpoint_every))  # saves the rest
    stop = StopOnSignal(out)
    callbacks.append(stop)
    trainer = L.Trainer(
        accelerator=options.accelerator,
        devices=options.devices,
        num_nodes=options.num_nodes,
        strategy=options.strategy,
        precision=default_precision(options.precision, options.accelerator),  # type: ignore[arg-type]
        max_epochs=recipe.epochs,
        max_steps=options.max_steps,
        max_time=None if options.max_minutes is None else timedelta(minutes=options.max_minutes),
        gradient_clip_val=recipe.grad_clip,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],  # last.ckpt replaced by a rename, never copied over
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=options.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,  # the data module shards itself (deterministically)
        default_root_dir=out,
    )
    with stopping(stop, out):
        try:
            # Our checkpoints hold tensors and plain containers only: load them without pickle.
            trainer.fit(task, datamodule=data, ckpt_path=ckpt, weights_only=True if ckpt else None)
        except NonFiniteLossError as err:
            kept = out / CHECKPOINT
            where = (
                f"the last good state is kept in {kept}" if kept.exists() else "nothing was saved"
            )
            raise TrainingError(f"{err}; {where}. Lower --lr or check the data.") from None
        if trainer.interrupted:
            raise TrainingError(f"interrupted; continue with: lale train --resume {out}")
        if best.best is None:  # the step budget ended inside the first epoch: validate now
            trainer.validate(task, datamodule=data, verbose=False)
    if best.best is None or not (out / WEIGHTS).is_file():
        raise TrainingError(
            f"validation gave no macro-F1, so no weights were written to {out / WEIGHTS}; "
            "check that the val masks hold labelled pixels"
        )
    load_weights(task.net, out / WEIGHTS)
    trainer.test(task, datamodule=data, verbose=False)
    test_scores = task.test_scores
    if trainer.is_global_zero:
        if test_scores is None:
            raise TrainingError(f"the test split gave no scores; {out / TEST_METRICS} not written")
        write_outputs(out, test_scores, task.net, data.split("test"), table.rows, schema)
        if task.test_per_image is not None:
            write_per_image(out, data.split("test").names, task.test_per_image)
        report_unknown(data, out, say)
    leave_process_group()
    stopped = bool(early is not None and early.stopped_epoch > 0)
    return TrainResult(
        run_dir=out,
        best_score=best.best,
        best_epoch=best.best_epoch,
        epochs_run=trainer.current_epoch,
        test_scores=test_scores,
        stopped_early=stopped,
    )


__all__ = [
    "RunError",
    "TrainOptions",
    "TrainResult",
    "TrainingError",
    "TrainingStopped",
    "count_class_pixels",
    "resolve_schema",
    "resume",
    "train",
]
