"""End-to-end tests of ``lale train`` / ``lale evaluate`` and the run directory they keep.

Everything runs on the CPU on tiny synthetic data (64×64 patches, batch 4) with a shrunken LALE
(``TINY``), so a whole run takes a few seconds. One run made through the command line
(``cli_run``) is shared by the tests that only read it; tests that train copy it or make their
own.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch
from torch import nn
from typer.testing import CliRunner

from lale import cli
from lale.data.synthetic import write_dataset
from lale.recipe import Recipe
from lale.run_layout import CHECKPOINT
from lale.runs import load_config, load_run
from lale.training import module as training_module
from lale.training.run import TrainingError, TrainOptions, resume, train

runner = CliRunner()

TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}
TINY_ARGS = [f"--model-arg={k}={json.dumps(v)}" for k, v in TINY.items()]
BATCH, CROP, SIZE = 4, 64, 64
FIGURES = ("confusion_matrix.png", "per_class.png", "samples.png", "history.png")

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),  # inside Lightning
]


def _quiet(_: str) -> None:
    pass


def _options(data: Path, out: Path, epochs: int, **kwargs: Any) -> TrainOptions:
    """The same run as ``cli_run`` makes, through the library."""
    recipe = Recipe(batch_size=BATCH, epochs=epochs, crop_size=CROP)
    return TrainOptions(data, out, model_kwargs=TINY, recipe=recipe, progress=False, **kwargs)


def _train_args(data: Path, out: Path, epochs: int, *extra: str) -> list[str]:
    return [
        "train",
        f"--data={data}",
        f"--out={out}",
        f"--epochs={epochs}",
        f"--batch-size={BATCH}",
        f"--crop-size={CROP}",
        "--no-progress",
        *TINY_ARGS,
        *extra,
    ]


def _one_line_error(result: Any, code: int = 1) -> str:
    """The single stderr line of a failed command (exit ``code``, no traceback)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def _checkpoint(run_dir: Path) -> dict[str, Any]:
    ckpt: dict[str, Any] = torch.load(run_dir / CHECKPOINT, weights_only=True)
    return ckpt


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Paths at which two nested checkpoint structures differ (tensors compared bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where} length {len(a)} vs {len(b)}"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in _differences(x, y, f"{where}/{i}")]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def _assert_same_training_state(a: Path, b: Path) -> None:
    """Same weights, optimiser and scheduler state, RNG, callback state and metrics table."""
    ca, cb = _checkpoint(a), _checkpoint(b)
    assert (ca["epoch"], ca["global_step"]) == (cb["epoch"], cb["global_step"])
    for key in ("state_dict", "optimizer_states", "plateau", "rng_cpu", "callbacks"):
        differ = _differences(ca[key], cb[key], key)
        assert not differ, f"{len(differ)} differences, e.g. {differ[:3]}"
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=16, val=4, test=4, size=SIZE, seed=0)
    return root


@pytest.fixture(scope="module")
def cli_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch through ``lale train`` (4 steps); read-only for the tests that use it."""
    out = tmp_path_factory.mktemp("runs") / "cli"
    result = runner.invoke(cli.app, _train_args(data, out, 1))
    assert result.exit_code == 0, result.output
    return out


# -- (1) a whole run through the command line ------------------------------------------------
def test_cli_train_writes_a_complete_run_directory(cli_run: Path, data: Path) -> None:
    config = load_config(cli_run / "config.json")
    assert config.model == "lale_t"
    assert {k: config.model_kwargs[k] for k in TINY} == TINY
    assert config.class_schema["name"] == "aras400k" and len(config.class_schema["classes"]) == 7
    assert config.mean == [0.485, 0.456, 0.406] and config.std == [0.229, 0.224, 0.225]
    assert config.input_size == [CROP, CROP]
    recipe = config.recipe
    assert (recipe.batch_size, recipe.epochs, recipe.crop_size) == (BATCH, 1, CROP)
    assert recipe.lr == 1e-3 and recipe.loss == "dice" and recipe.data == str(data)
    assert config.seed == 0
    assert config.versions["torch"] == torch.__version__ and config.versions["lightning"]

    model, _ = load_run(cli_run)  # config.json + model.safetensors rebuild the model
    assert model(torch.zeros(1, 3, SIZE, SIZE)).shape == (1, 7, SIZE, SIZE)

    ckpt = _checkpoint(cli_run)  # no pickled code in the resumable state
    assert (ckpt["epoch"], ckpt["global_step"]) == (0, 16 // BATCH)

    rows = _rows(cli_run)
    assert [r["epoch"] for r in rows] == ["0"] and rows[0]["step"] == "4"
    assert 0 <= float(rows[0]["val/macro_f1"]) <= 1

    scores = json.loads((cli_run / "test_metrics.json").read_text())
    assert scores["pixels"] == 4 * SIZE * SIZE
    assert 0 <= scores["macro"]["f1"] <= 1 and len(scores["confusion_matrix"]) == 7
    for name in FIGURES:
        assert (cli_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not list(cli_run.rglob("*.tmp"))


def test_cli_train_refuses_an_existing_run_directory(cli_run: Path, data: Path) -> None:
    before = (cli_run / "config.json").read_bytes()
    result = runner.invoke(cli.app, _train_args(data, cli_run, 1))
    line = _one_line_error(result)
    assert "already holds a run" in line and "--resume" in line
    assert (cli_run / "config.json").read_bytes() == before


# -- (2) resumed runs repeat an uninterrupted one exactly ----------------------------------
def test_resume_after_an_epoch_equals_a_straight_run(
    cli_run: Path, data: Path, tmp_path: Path
) -> None:
    straight = train(_options(data, tmp_path / "straight", 2), say=_quiet)
    resumed_dir = shutil.copytree(cli_run, tmp_path / "resumed")
    resumed = resume(resumed_dir, epochs=2, overrides={"progress": False}, say=_quiet)
    assert straight.epochs_run == resumed.epochs_run == 2
    assert load_config(resumed_dir / "config.json").recipe.epochs == 2
    assert [r["epoch"] for r in _rows(resumed_dir)] == ["0", "1"]
    _assert_same_training_state(tmp_path / "straight", resumed_dir)
    assert straight.test_scores == resumed.test_scores


def test_resume_in_the_middle_of_an_epoch_equals_a_straight_run(
    cli_run: Path, data: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "mid"
    stopped = train(_options(data, run_dir, 1, max_steps=2, checkpoint_every=1), say=_quiet)
    # A budget inside the first epoch still validates, keeps weights and tests them.
    assert stopped.test_scores is not None and (run_dir / "model.safetensors").exists()
    ckpt = _checkpoint(run_dir)
    assert (ckpt["epoch"], ckpt["global_step"]) == (0, 2)  # inside epoch 0 (4 steps)
    resume(run_dir, overrides={"progress": False}, say=_quiet)  # max_steps back to -1
    _assert_same_training_state(cli_run, run_dir)


def test_checkpoints_are_written_beside_their_target(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Staged in the system temp folder, a checkpoint is *copied* onto last.ckpt whenever that
    # folder is on another filesystem (tmpfs /tmp), so a kill mid-copy truncates it. A temp
    # folder that does not exist shows the checkpoint never goes through it.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    train(_options(data, tmp_path / "run", 1, max_steps=1, checkpoint_every=1), say=_quiet)
    assert _checkpoint(tmp_path / "run")["global_step"] == 1
    assert not list((tmp_path / "run").rglob("*.tmp"))


# -- (3) kill -9 in the middle of training, then resume ----------------------------------
def _checkpoint_step(path: Path) -> int | None:
    try:  # replaced by a rename, so an open file is always a whole checkpoint
        return int(torch.load(path, weights_only=True, map_location="cpu")["global_step"])
    except FileNotFoundError:
        return None


def test_kill_9_mid_training_leaves_a_resumable_run(data: Path, tmp_path: Path) -> None:
    # epochs to spare: the poll below must see a checkpoint of the second epoch or later before
    # the run ends, also on a fast machine
    steps_per_epoch, epochs = 16 // BATCH, 6
    run_dir = tmp_path / "run"
    args = _train_args(data, run_dir, epochs, "--checkpoint-every=1")
    log_path = tmp_path / "train.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lale.cli", *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            # Kill once an epoch is validated and the next is under way.
            deadline = time.monotonic() + 180
            while True:
                step = _checkpoint_step(run_dir / CHECKPOINT)
                if step is not None and step > steps_per_epoch:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"no mid-training checkpoint to kill at:\n{log_path.read_text()}")
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "test_metrics.json").exists(), "training finished before the kill"

    # Every file under its real name is whole; only hidden temp files may be left over.
    load_config(run_dir / "config.json")
    load_run(run_dir)
    killed_at = _checkpoint(run_dir)["global_step"]
    assert steps_per_epoch < killed_at < epochs * steps_per_epoch
    done = [r["epoch"] for r in _rows(run_dir)]  # the epochs validated before the kill
    assert (
        done == [str(e) for e in range(len(done))]
        and 1 <= len(done) <= killed_at // steps_per_epoch
    )
    for path in run_dir.rglob("*.tmp"):
        assert path.name.startswith("."), path

    result = runner.invoke(cli.app, ["train", f"--resume={run_dir}", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "test_metrics.json").read_text())["pixels"] == 4 * SIZE * SIZE
    assert [r["epoch"] for r in _rows(run_dir)] == [str(e) for e in range(epochs)]
    assert _checkpoint(run_dir)["global_step"] == epochs * steps_per_epoch


# -- (4) a NaN loss stops the run and keeps the last good state ---------------------------
class _NaNAfter(nn.Module):
    """Wraps the training loss: training calls after the first ``good`` return NaN."""

    def __init__(self, loss: nn.Module, good: int) -> None:
        super().__init__()
        self.loss, self.good, self.calls = loss, good, 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value: torch.Tensor = self.loss(logits, target)
        if torch.is_grad_enabled():  # a training step, not validation
            self.calls += 1
            if self.calls > self.good:
                return value * math.nan
        return value


def _nan_after(good: int, monkeypatch: pytest.MonkeyPatch) -> None:
    build = training_module.build_loss

    def build_nan(*args: Any, **kwargs: Any) -> nn.Module:
        return _NaNAfter(build(*args, **kwargs), good)

    monkeypatch.setattr(training_module, "build_loss", build_nan)


def _assert_good_state_kept(run_dir: Path, step: int) -> None:
    ckpt = _checkpoint(run_dir)
    assert ckpt["global_step"] == step
    tensors = [t for t in ckpt["state_dict"].values() if t.is_floating_point()]
    for state in ckpt["optimizer_states"][0]["state"].values():
        tensors += [t for t in state.values() if t.is_floating_point()]
    assert tensors and all(bool(torch.isfinite(t).all()) for t in tensors)


def test_nan_loss_raises_and_keeps_the_last_good_checkpoint(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _nan_after(2, monkeypatch)
    with pytest.raises(TrainingError) as info:
        train(_options(data, tmp_path / "run", 1, checkpoint_every=1), say=_quiet)
    message = str(info.value)
    assert "\n" not in message and "loss became nan" in message
    assert str(tmp_path / "run" / CHECKPOINT) in message
    _assert_good_state_kept(tmp_path / "run", 2)


def test_cli_nan_loss_is_a_one_line_error(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _nan_after(3, monkeypatch)
    result = runner.invoke(cli.app, _train_args(data, tmp_path / "run", 1, "--checkpoint-every=1"))
    line = _one_line_error(result)
    assert "loss became nan" in line and "last.ckpt" in line
    _assert_good_state_kept(tmp_path / "run", 3)


# -- (5) lale evaluate ---------------------------------------------------------------------
def test_evaluate_matches_the_test_scores_of_training(
    cli_run: Path, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval.json"
    args = ["evaluate", f"--run={cli_run}", f"--data={data}", "--split=test", f"--json={out}"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    trained = json.loads((cli_run / "test_metrics.json").read_text())
    assert (scores["split"], scores["images"]) == ("test", 4)
    assert scores["confusion_matrix"] == trained["confusion_matrix"]
    assert scores["macro"]["f1"] == trained["macro"]["f1"]
    assert scores["per_class"] == trained["per_class"]


def test_evaluate_bad_runs_are_one_line_errors(cli_run: Path, data: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = runner.invoke(cli.app, ["evaluate", f"--run={missing}", f"--data={data}"])
    line = _one_line_error(result, code=2)
    assert "missing" in line and "not found" in line

    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    shutil.copy(cli_run / "config.json", no_weights / "config.json")
    result = runner.invoke(cli.app, ["evaluate", f"--run={no_weights}", f"--data={data}"])
    line = _one_line_error(result, code=2)
    assert "model.safetensors" in line and "not found" in line
    assert not list(no_weights.glob("eval_*.json"))


def test_safetensors_weights_are_the_best_epoch(cli_run: Path) -> None:
    # One epoch: the best weights are the epoch-0 weights held by the checkpoint as well.
    weights = safetensors.torch.load_file(cli_run / "model.safetensors")
    state = _checkpoint(cli_run)["state_dict"]
    assert weights.keys() == {k.removeprefix("net.") for k in state if k.startswith("net.")}
    assert all(torch.equal(weights[k], state[f"net.{k}"]) for k in weights)
