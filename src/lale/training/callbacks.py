"""Callbacks that keep a run directory complete and consistent whatever happens.

* :class:`ResumeCheckpoint` writes ``checkpoints/last.ckpt`` (the trainer's whole state) every
  few steps and after each validation, through :class:`AtomicCheckpointIO` (a temporary file in
  the same folder, renamed into place), so a crash leaves the previous one intact.
* :class:`BestWeights` writes ``model.safetensors`` whenever validation macro-F1 improves.
* :class:`StopOnSignal` turns SIGINT/SIGTERM into a checkpoint at the next batch boundary and
  a prompt stop.
* :class:`EpochTable` rewrites ``metrics.csv`` after each epoch from rows kept in its own state,
  which travels with the checkpoint: after a resume the table continues without gaps or
  duplicate epochs.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.trainer.states import TrainerFn

from lale.atomic import write_bytes_atomic
from lale.errors import WorkFailedError, cause_text
from lale.run_layout import CHECKPOINT, METRICS_CSV, WEIGHTS
from lale.training.module import MONITOR
from lale.weights import save_weights


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints like the run's other files: temporary file beside the target, rename.

    Lightning's own writer stages the file in the system temp folder and moves it into place;
    when that folder is on another filesystem (a tmpfs ``/tmp``, a run on network storage) the
    move is a plain copy onto the target, and a crash during it leaves a truncated checkpoint.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            write_bytes_atomic(Path(path), buffer.getvalue())
        except OSError as err:  # a full disk, a lost mount: the previous checkpoint is intact
            raise CheckpointWriteError(Path(path), err) from err


class CheckpointWriteError(WorkFailedError):
    """A checkpoint could not be written; the previous one (if any) is left as it was."""

    def __init__(self, path: Path, err: OSError) -> None:
        self.path = path
        kept = "the previous checkpoint is kept" if path.exists() else "no checkpoint is kept"
        super().__init__(f"{path}: could not write the checkpoint ({cause_text(err)}); {kept}")


class SignalStop(Exception):
    """Raised by :class:`StopOnSignal` once the resumable state is saved; names the signal."""


class StopOnSignal(L.Callback):
    """On SIGINT or SIGTERM, save the resumable state after the current batch and stop.

    :meth:`install` replaces the two handlers (main thread only) until :meth:`restore`; the
    handler only records the signal, and the next training batch boundary saves
    ``checkpoints/last.ckpt`` and raises :class:`SignalStop`. A second signal stops at once.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / CHECKPOINT
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        if self.received is not None:
            trainer.save_checkpoint(self.path, weights_only=False)
            raise SignalStop(self.received)


class ResumeCheckpoint(L.Callback):
    """Save the trainer's resumable state to ``run_dir/checkpoints/last.ckpt``.

    Args:
        run_dir: The run directory.
        every_n_steps: Also save every this many optimizer steps (0: only after validation).
    """

    def __init__(self, run_dir: Path, every_n_steps: int = 50) -> None:
        self.path = run_dir / CHECKPOINT
        self.every_n_steps = every_n_steps

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            trainer.save_checkpoint(self.path, weights_only=False)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Not after a stand-alone validation (a step budget that ended mid-epoch): the state to
        # resume from is the one saved inside the fit, which that validation does not change.
        if not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            trainer.save_checkpoint(self.path, weights_only=False)


def _value(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if value is None:
        return None
    value = float(value.item() if isinstance(value, torch.Tensor) else value)
    return value if math.isfinite(value) else None


class BestWeights(L.Callback):
    """Write the weights of the best validation epoch (by macro-F1) to ``model.safetensors``."""

    def __init__(self, run_dir: Path, monitor: str = MONITOR) -> None:
        self.path = run_dir / WEIGHTS
        self.monitor = monitor
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = _value(trainer.callback_metrics, self.monitor)
        if score is None or (self.best is not None and score <= self.best):
            return
        self.best, self.best_epoch = score, trainer.current_epoch
        if trainer.is_global_zero:
            save_weights(pl_module.net, self.path)  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.best_epoch = state_dict["best"], state_dict["best_epoch"]


class EpochTable(L.Callback):
    """One row per epoch in ``metrics.csv``: losses, learning rate and validation scores."""

    COLUMNS = ("epoch", "step", "lr", "train/loss", "val/loss", "val/accuracy")

    def __init__(self, run_dir: Path, columns: tuple[str, ...] = COLUMNS) -> None:
        self.path = run_dir / METRICS_CSV
        self.columns = columns
        self.rows: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        row["lr"] = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        for key in sorted(metrics):
            if key.startswith(("train/", "val/")):
                value = _value(metrics, key)
                row[key.removesuffix("_epoch")] = None if value is None else round(value, 6)
        self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
        if trainer.is_global_zero:
            self._write()

    def _write(self) -> None:
        keys = list(self.columns)
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        write_bytes_atomic(self.path, buffer.getvalue().encode())

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict["rows"])
