"""DDP on two CPU processes (gloo): ranks stay in step and metrics cover the whole split.

The run goes through :func:`lale.training.run.train` with ``strategy="ddp", devices=2`` exactly
as ``lale train --devices 2 --strategy ddp`` does: Lightning's launcher starts rank 1 by running
the same command again. ``tests/scripts/ddp_probe.py`` is that command; each rank reports what
it saw to a JSON file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from lale.data.folder import count_class_pixels
from lale.data.schema import load_schema
from lale.data.synthetic import write_dataset

PROBE = Path(__file__).parent / "scripts" / "ddp_probe.py"
TRAIN, VAL, TEST, SIZE = 16, 4, 4, 64  # the probe trains with batch 4 per rank, 3 steps


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    """(data, run directory, per-rank reports) of one two-process run."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    root = tmp_path_factory.mktemp("ddp")
    data, out, reports = root / "data", root / "run", root / "reports"
    write_dataset(data, train=TRAIN, val=VAL, test=TEST, size=SIZE, seed=0)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    env.pop("MASTER_PORT", None)  # Lightning picks a free one
    done = subprocess.run(
        [sys.executable, str(PROBE), str(data), str(out), str(reports)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = sorted(reports.glob("rank*.json"))
    assert [p.name for p in found] == ["rank0.json", "rank1.json"], done.stderr[-3000:]
    return data, out, [json.loads(p.read_text()) for p in found]


def test_ranks_hold_identical_weights(ddp_run: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, out, (r0, r1) = ddp_run
    assert (r0["rank"], r1["rank"]) == (0, 1) and r0["world_size"] == r1["world_size"] == 2
    assert r0["global_step"] == r1["global_step"] == 3
    assert r0["weights_sha256"] == r1["weights_sha256"]
    assert (out / "model.safetensors").is_file() and (out / "checkpoints" / "last.ckpt").is_file()


def test_training_batches_are_sharded(ddp_run: tuple[Path, Path, list[dict[str, Any]]]) -> None:
    _, _, (r0, r1) = ddp_run
    assert r0["train_indices"].keys() == r1["train_indices"].keys() == {"0", "1"}
    for epoch in ("0", "1"):
        a, b = r0["train_indices"][epoch], r1["train_indices"][epoch]
        assert len(a) == len(b) == TRAIN // 2
        assert sorted(a + b) == list(range(TRAIN)), f"epoch {epoch}: shards overlap"
    assert r0["train_indices"]["0"] != r0["train_indices"]["1"]  # reshuffled each epoch


def test_metrics_are_reduced_across_ranks(
    ddp_run: tuple[Path, Path, list[dict[str, Any]]],
) -> None:
    data, out, (r0, r1) = ddp_run
    schema = load_schema("aras400k")
    val_pixels = sum(count_class_pixels(data, schema, "val"))
    test_pixels = sum(count_class_pixels(data, schema, "test"))
    assert len(r0["val"]) == len(r1["val"]) == 1  # epoch 0 only: step 3 stops inside epoch 1
    v0, v1 = r0["val"][0], r1["val"][0]
    assert v0["local"] + v1["local"] == val_pixels
    assert 0 < v0["local"] < val_pixels  # each rank scored only its own share...
    assert v0["reduced"] == v1["reduced"] == val_pixels  # ...but compute() sees the whole split
    assert v0["macro_f1"] == v1["macro_f1"]  # so every rank takes the same decisions
    assert v0["train_loss"] == v1["train_loss"]
    assert r0["test_pixels"] == r1["test_pixels"] == test_pixels
    assert json.loads((out / "test_metrics.json").read_text())["pixels"] == test_pixels
