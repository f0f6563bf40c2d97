"""``lale train`` / ``lale evaluate`` on bad, awkward and interrupted inputs.

Every failure is one line on stderr with its exit code; every exit 0 of ``lale train`` leaves
``model.safetensors`` and ``test_metrics.json``. Tiny synthetic data and the shrunken model of
``test_training`` keep each run to a few seconds.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from typer.testing import CliRunner

from lale import cli
from lale.data.io import read_image, read_info
from lale.data.schema import ARAS400K, ImageSpec, load_schema
from lale.data.synthetic import write_dataset
from lale.errors import cause_text
from lale.run_layout import CHECKPOINT, LOCK, UNKNOWN_COLOURS
from lale.training import callbacks
from lale.training.rundir import RunBusyError, RunLock

runner = CliRunner()
TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}
BATCH = 4

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        f"--data={data}",
        f"--out={out}",
        "--epochs=1",
        f"--batch-size={BATCH}",
        "--crop-size=64",
        "--no-progress",
        *[f"--model-arg={k}={json.dumps(v)}" for k, v in TINY.items()],
        *extra,
    ]


def _error(result: Any, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def _trained(out: Path) -> None:
    """What an exit 0 of ``lale train`` promises."""
    assert (out / "model.safetensors").is_file() and (out / "test_metrics.json").is_file()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=8, val=2, test=2, size=64, seed=0)
    return root


def _recolour(data: Path, tmp: Path, shift: int = 1) -> Path:
    """A copy of ``data`` whose mask colours are all off the ARAS400k palette."""
    root = Path(shutil.copytree(data, tmp / "recoloured"))
    for mask in root.glob("*/masks/*.png"):
        rgb = np.asarray(Image.open(mask).convert("RGB")).astype(np.int16)
        Image.fromarray(((rgb + shift) % 256).astype(np.uint8)).save(mask)
    return root


# -- silent success -------------------------------------------------------------------------
def test_wrong_schema_is_an_error_naming_it_and_the_colours(data: Path, tmp_path: Path) -> None:
    wrong = _recolour(data, tmp_path)
    out = tmp_path / "run"
    line = _error(runner.invoke(cli.app, _args(wrong, out)), 2)
    assert "schema 'aras400k'" in line and "--schema" in line and "lale schema init" in line
    assert "#" in line and " px" in line  # most common unknown colours, hex, with counts
    assert not out.exists(), "nothing is written before the data pass their checks"


def test_max_unknown_bounds_the_share_of_unknown_pixels(data: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(data, tmp_path / "half"))
    for mask in root.glob("*/masks/*.png"):
        rgb = np.asarray(Image.open(mask).convert("RGB")).copy()
        rgb[: rgb.shape[0] * 3 // 4] = (1, 2, 3)  # three quarters unknown
        Image.fromarray(rgb).save(mask)
    line = _error(runner.invoke(cli.app, _args(root, tmp_path / "a")), 2)
    assert "more than --max-unknown 50%" in line and "#010203 (1,2,3)" in line
    result = runner.invoke(cli.app, _args(root, tmp_path / "b", "--max-unknown=0.9"))
    assert result.exit_code == 0, result.output
    _trained(tmp_path / "b")
    # Unknown colours: reported on the console once per split and recorded in the run.
    assert "unknown mask colours in train:" in result.output
    record = json.loads((tmp_path / "b" / UNKNOWN_COLOURS).read_text())
    first = next(iter(record["train"]["files"].values()))
    assert first["pixels"] > 0 and first["examples"] == ["(1,2,3)"]
    evaluate = ["evaluate", f"--run={tmp_path / 'b'}", f"--data={root}", "--split=val"]
    line = _error(runner.invoke(cli.app, evaluate), 2)  # evaluation applies the same bound
    assert "more than --max-unknown 50%" in line and "#010203 (1,2,3)" in line
    evaluated = runner.invoke(cli.app, [*evaluate, "--max-unknown=0.9"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "unknown mask colours in val:" in evaluated.output


def test_max_steps_inside_the_first_epoch_validates_and_tests(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(cli.app, _args(data, out, "--max-steps=1"))
    assert result.exit_code == 0, result.output
    _trained(out)


# -- half-made runs -------------------------------------------------------------------------
def test_a_run_that_never_trained_is_replaced_by_the_retry(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")  # left by a run whose data were bad
    result = runner.invoke(cli.app, _args(data, out))
    assert result.exit_code == 0, result.output
    _trained(out)
    line = _error(runner.invoke(cli.app, _args(data, out)), 1)
    assert "already holds a run; resume it with --resume" in line


def test_a_second_trainer_gets_a_line_naming_the_holder(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunLock(out):
        line = _error(runner.invoke(cli.app, _args(data, out)), 1)
        assert f"pid {os.getpid()}" in line and "is being trained by" in line
        with pytest.raises(RunBusyError), RunLock(out):
            pass
    assert (out / LOCK).read_text() == ""


@pytest.mark.parametrize("blocker", ["file", "parent_file", "read_only"])
def test_an_out_that_cannot_be_created_is_one_line(
    data: Path, tmp_path: Path, blocker: str
) -> None:
    if blocker == "read_only" and os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    (tmp_path / "f").write_text("")
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    out = {"file": tmp_path / "f", "parent_file": tmp_path / "f" / "run", "read_only": locked / "r"}
    target = out[blocker]
    for args in (
        _args(data, target),
        ["synth", str(target), "--train=1", "--val=1", "--test=1", "--size=32"],
        ["demo", f"--out={target}"],
    ):
        line = _error(runner.invoke(cli.app, args), 2)
        assert str(target) in line
    json_out = ["evaluate", f"--run={tmp_path}", f"--data={data}", f"--json={target / 'x.json'}"]
    assert str(target) in _error(runner.invoke(cli.app, json_out), 2)


def test_sigterm_stops_promptly_keeps_a_checkpoint_and_says_how_to_resume(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = _args(data, out, "--epochs=50", "--checkpoint-every=1", "--early-stopping=0")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lale.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / CHECKPOINT).exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no checkpoint to stop at: {proc.communicate()}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        stopped_at = time.monotonic()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - stopped_at < 10
    assert proc.returncode == 130, err
    line = err.decode().strip().splitlines()[-1]
    assert "stopped by SIGTERM" in line and str(out / CHECKPOINT) in line
    assert f"lale train --resume {out}" in line
    torch.load(out / CHECKPOINT, weights_only=True)  # whole and loadable


def test_a_failed_checkpoint_write_keeps_the_previous_one(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    real = callbacks.write_bytes_atomic
    calls = {"n": 0}

    def full_disk(path: Path, payload: bytes) -> None:
        if path.name == "last.ckpt":
            calls["n"] += 1
            if calls["n"] > 1:
                raise OSError(errno.ENOSPC, "No space left on device")
        real(path, payload)

    monkeypatch.setattr(callbacks, "write_bytes_atomic", full_disk)
    line = _error(runner.invoke(cli.app, _args(data, out, "--checkpoint-every=1")), 1)
    assert "No space left on device" in line and "the previous checkpoint is kept" in line
    assert torch.load(out / CHECKPOINT, weights_only=True)["global_step"] == 1
    monkeypatch.setattr(callbacks, "write_bytes_atomic", real)
    result = runner.invoke(cli.app, ["train", f"--resume={out}", "--no-progress"])
    assert result.exit_code == 0, result.output
    _trained(out)


# -- inputs ---------------------------------------------------------------------------------
def _write_png16(path: Path, chw: np.ndarray) -> None:
    with rasterio.open(
        path, "w", driver="PNG", width=chw.shape[2], height=chw.shape[1],
        count=chw.shape[0], dtype="uint16",
    ) as dst:  # fmt: skip
        dst.write(chw)


def test_16bit_rgba_pngs_and_stray_files_train(data: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(data, tmp_path / "deep"))
    for image in root.glob("*/images/*.png"):
        rgb = np.asarray(Image.open(image).convert("RGB")).transpose(2, 0, 1).astype(np.uint16)
        alpha = np.full(rgb.shape[1:], 65535, np.uint16)
        alpha[:4] = 0  # transparent rows: ignored in training
        _write_png16(image, np.concatenate([rgb * 16, alpha[None]]))  # 12-bit data
    info = read_info(next(root.glob("train/images/*.png")))
    assert (info.dtype, info.count, info.alpha) == ("uint16", 4, True)
    spec = ImageSpec(dtype="uint16", scale=4080)
    pixels = read_image(next(root.glob("train/images/*.png")), spec)
    assert pixels.dtype == np.uint16 and pixels.shape[0] == 3 and pixels.max() > 255
    for junk in ("README.txt", ".DS_Store", "Thumbs.db"):
        (root / "train" / "images" / junk).write_text("x")
    schema = {**ARAS400K.to_dict(), "image": spec.to_dict()}
    (root / "schema.json").write_text(json.dumps(schema))
    result = runner.invoke(cli.app, _args(root, tmp_path / "run"))
    assert result.exit_code == 0, result.output
    _trained(tmp_path / "run")
    warnings = [ln for ln in result.output.splitlines() if ln.startswith("warning: skipped")]
    assert len(warnings) == 1 and "README.txt" in warnings[0] and "Thumbs.db" in warnings[0]
    alpha = [ln for ln in result.output.splitlines() if "alpha band" in ln]
    assert len(alpha) == 3, result.output  # one line per split, naming its images
    train_images = sorted(p.name for p in root.glob("train/images/*.png"))
    assert alpha[0].startswith("warning: train split: 8 images have an alpha band")
    assert all(name in alpha[0] for name in train_images[:5]) and "and 3 more" in alpha[0], alpha


@pytest.mark.parametrize("kind", ["png-image", "png-mask", "jpeg-image", "tif-image"])
def test_a_truncated_file_is_one_line_before_the_run_directory_exists(
    data: Path, tmp_path: Path, kind: str
) -> None:
    root = Path(shutil.copytree(data, tmp_path / "cut"))
    suffix, role = kind.split("-")
    folder = root / "val" / ("images" if role == "image" else "masks")
    victim = sorted(folder.glob("*.png"))[-1]
    if suffix != "png":  # re-encode the image as JPEG or GeoTIFF before cutting it
        pixels = np.asarray(Image.open(victim).convert("RGB"))
        victim.unlink()
        victim = victim.with_suffix(f".{'jpg' if suffix == 'jpeg' else 'tif'}")
        if suffix == "jpeg":
            Image.fromarray(pixels).save(victim, quality=95)
        else:
            with rasterio.open(
                victim, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8",
                tiled=True, blockxsize=16, blockysize=16,
            ) as dst:  # fmt: skip
                dst.write(pixels.transpose(2, 0, 1))
    whole = victim.read_bytes()
    victim.write_bytes(whole[: len(whole) * 3 // 4])  # a copy cut short: the header survives
    read_info(victim, role)  # the header alone does not show it
    out = tmp_path / "run"
    line = _error(runner.invoke(cli.app, _args(root, out)), 2)
    assert victim.name in line and "truncated" in line, line
    assert not out.exists()  # neither .lock nor config.json: nothing was written


def test_read_errors_carry_their_root_cause() -> None:
    try:
        try:
            raise OSError("TIFFReadEncodedStrip() failed: LZW decoding error")
        except OSError as gdal:
            raise RuntimeError("Read failed. See previous exception for details.") from gdal
    except RuntimeError as err:
        text = cause_text(err)
    assert text.startswith("RuntimeError: Read failed.") and "LZW decoding error" in text


# -- class schemas --------------------------------------------------------------------------
def test_schema_init_then_train(data: Path, tmp_path: Path) -> None:
    wrong = _recolour(data, tmp_path, shift=7)
    result = runner.invoke(cli.app, ["schema", "init", str(wrong)])
    assert result.exit_code == 0, result.output
    written = load_schema(wrong / "schema.json")
    assert written.names[0] == "class_0" and written.has_colors
    assert "wrote" in result.output
    assert _error(runner.invoke(cli.app, ["schema", "init", str(wrong)]), 2).endswith(
        "give --force to overwrite it or another --out"
    )
    trained = runner.invoke(cli.app, _args(wrong, tmp_path / "run"))  # DATA/schema.json
    assert trained.exit_code == 0, trained.output
    _trained(tmp_path / "run")


def test_the_documented_schema_examples_load(tmp_path: Path) -> None:
    from lale.cli.schema import SCHEMA_EXAMPLE_JSON, SCHEMA_EXAMPLE_YAML

    (tmp_path / "s.json").write_text(SCHEMA_EXAMPLE_JSON)
    (tmp_path / "s.yaml").write_text(SCHEMA_EXAMPLE_YAML)
    assert load_schema(tmp_path / "s.json").names == ("forest", "water", "urban")
    pytest.importorskip("yaml")
    assert load_schema(tmp_path / "s.yaml").image.dtype == "uint16"
    result = runner.invoke(cli.app, ["train", "--help"])
    assert '"classes"' in result.output and "ignore_values" in result.output


def test_prediction_reads_16bit_pngs_as_uint16(tmp_path: Path) -> None:
    from lale.inference.scene import open_scene

    path = tmp_path / "deep.png"
    chw = (np.arange(3 * 8 * 8).reshape(3, 8, 8) * 20).astype(np.uint16)
    alpha = np.full((1, 8, 8), 65535, np.uint16)
    alpha[0, 0, 0] = 0
    _write_png16(path, np.concatenate([chw, alpha]))
    with open_scene(path) as scene:
        pixels, valid = scene.read([1, 2, 3], (0, 0, 8, 8))
    assert scene.dtype == "uint16" and np.array_equal(pixels, chw)
    assert not valid[0, 0] and valid.sum() == 63
