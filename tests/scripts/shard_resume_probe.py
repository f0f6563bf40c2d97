"""Train from shards under DDP on two CPU processes, get killed mid-epoch, resume; log batches.

Run by ``tests/test_shards.py`` as ``python tests/scripts/shard_resume_probe.py PHASE SHARDS OUT
LOG_DIR`` with ``PHASE`` ``kill`` (train; after the checkpoint of step ``KILL_AT`` every rank
SIGKILLs itself, as a preempted job's processes die) or ``resume`` (``lale train --resume``).
Lightning's launcher starts rank 1 by running this script again. After each training step whose
checkpoint is written, each rank appends the sha256 of every image of that batch to
``LOG_DIR/{PHASE}-rank{r}.jsonl``, so what a rank logged is exactly what the run counts as
trained.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from lale.recipe import Recipe
from lale.training import run
from lale.training.module import SegmentationTask

TINY = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}
KILL_AT = 2  # optimizer steps before the kill (an epoch has 4 per rank)
LOG: list[Path] = []
PHASE: list[str] = []


class ProbeTask(SegmentationTask):
    """The training module, logging the images of each trained batch."""

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Lightning calls the callbacks' hooks (the step's checkpoint) before the module's.
        super().on_train_batch_end(outputs, batch, batch_idx)
        images = batch[0].cpu()
        digests = [hashlib.sha256(img.contiguous().numpy().tobytes()).hexdigest() for img in images]
        line = {"epoch": self.current_epoch, "step": self.global_step, "images": digests}
        with open(LOG[0] / f"{PHASE[0]}-rank{self.global_rank}.jsonl", "a") as fh:
            fh.write(json.dumps(line) + "\n")
        if PHASE[0] == "kill" and self.global_step == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)


def main(phase: str, shards: Path, out: Path, log: Path) -> None:
    log.mkdir(parents=True, exist_ok=True)
    LOG.append(log)
    PHASE.append(phase)
    run.SegmentationTask = ProbeTask  # the module train() and resume() build
    ddp: dict[str, Any] = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "progress": False}
    if phase == "kill":
        options = run.TrainOptions(
            data=shards,
            out=out,
            model_kwargs=TINY,
            recipe=Recipe(batch_size=2, epochs=1, crop_size=64),
            checkpoint_every=1,
            **ddp,
        )
        run.train(options, say=lambda _: None)
    else:
        run.resume(out, overrides=ddp, say=lambda _: None)


if __name__ == "__main__":
    main(sys.argv[1], *(Path(a) for a in sys.argv[2:5]))
