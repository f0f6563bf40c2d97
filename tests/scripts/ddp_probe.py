"""Train a few steps under DDP on two CPU processes and report what each rank saw.

Run by ``tests/test_ddp.py`` as ``python tests/scripts/ddp_probe.py DATA OUT REPORT_DIR``.
Lightning's DDP launcher starts the second rank by running this script again (as ``lale train
--devices 2 --strategy ddp`` does), so every rank executes :func:`main` and writes
``REPORT_DIR/rank{r}.json``:

* ``train_indices``: the dataset indices of this rank's training batches, per epoch;
* ``val``: per validation run, this rank's own pixel count (``local``), the count of the
  matrix that ``compute`` scored (``reduced``) and the logged ``val/macro_f1`` and
  ``train/loss`` (which early stopping, the best weights and the LR schedule follow);
* ``weights_sha256``: a hash of the network's weights when training ends;
* ``test_pixels``: pixels behind the test scores that ``train`` returned.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, ClassVar

import torch

from lale.recipe import Recipe
from lale.training import run
from lale.training.module import SegmentationTask
from lale.training.sampling import ResumableLoader

TINY = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}


def weights_digest(net: torch.nn.Module) -> str:
    """sha256 over the names and bytes of every tensor of ``net``'s state dict."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class ProbeTask(SegmentationTask):
    """The training module, recording what this rank sees."""

    report: ClassVar[dict[str, Any]] = {"train_indices": {}, "val": []}

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        loader = self.trainer.train_dataloader
        assert isinstance(loader, ResumableLoader)
        keys = loader.batch_sampler.keys()  # this rank's (index, crop seed) pairs of the epoch
        self.report["train_indices"][self.current_epoch] = [index for index, _ in keys]

    def on_validation_epoch_end(self) -> None:
        local = int(self.val_metrics.confmat.sum())  # before compute() syncs across ranks
        reduced = int(self.val_metrics.compute()["confusion_matrix"].sum())
        super().on_validation_epoch_end()
        logged = self.trainer.callback_metrics
        self.report["val"].append(
            {
                "local": local,
                "reduced": reduced,
                "macro_f1": float(logged["val/macro_f1"]),
                "train_loss": float(logged["train/loss"]),
            }
        )

    def on_train_end(self) -> None:
        self.report.update(
            rank=self.global_rank,
            world_size=self.trainer.world_size,
            global_step=self.global_step,
            weights_sha256=weights_digest(self.net),
        )


def main(data: Path, out: Path, report_dir: Path) -> None:
    run.SegmentationTask = ProbeTask  # the module train() builds
    options = run.TrainOptions(
        data=data,
        out=out,
        model_kwargs=TINY,
        recipe=Recipe(batch_size=4, epochs=2, crop_size=64),
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=3,
        checkpoint_every=1,
        progress=False,
    )
    result = run.train(options, say=lambda _: None)
    report = ProbeTask.report
    report["test_pixels"] = None if result.test_scores is None else result.test_scores["pixels"]
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"rank{report['rank']}.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:4]))
