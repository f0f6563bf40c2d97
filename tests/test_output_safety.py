"""Outputs checked up front, predict inputs as folders and globs, outputs that survive a crash."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from rasters import write_geotiff
from typer.testing import CliRunner

from lale import cli
from lale.data.prepare import cut as prepare_cut
from lale.inference import cog, scene_outputs

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning"),
]

runner = CliRunner()


def picture(path: Path, value: int = 90, size: tuple[int, int] = (24, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


def predict(run_dir: Path, out: Path, *inputs: str | Path, extra: tuple[str, ...] = ()) -> Any:
    args = ["predict", "--run", str(run_dir), "--out", str(out), "--tile", "32", "--overlap", "8"]
    return runner.invoke(cli.app, [*args, "--no-progress", *extra, *map(str, inputs)])


def one_line_error(result: Any, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- 1. output paths checked before any work ----------------------------------------------


def test_predict_out_blocked_by_a_file_is_one_line_before_any_input(
    run_dir: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    inputs = [picture(tmp_path / f"in{i}.png") for i in range(3)]
    for out in (blocker, blocker / "sub"):
        line = one_line_error(predict(run_dir, out, *inputs))
        assert str(out) in line and "cannot write output" in line
        assert "in0" not in line


def test_export_prepare_synth_check_their_output_first(run_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out = blocker / "model.onnx"
    line = one_line_error(
        runner.invoke(cli.app, ["export", "--run", str(run_dir), "--out", str(out)])
    )
    assert str(out) in line and "blocker is a file" in line
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    args = ["export", "--run", str(run_dir), "--int8-out", str(folder)]
    assert str(folder) in one_line_error(runner.invoke(cli.app, args))
    # prepare: the output is checked before the (missing) inputs are looked at
    missing = str(tmp_path / "missing.tif")
    for target in (blocker, blocker / "data"):
        args = ["prepare", "--imagery", missing, "--labels", missing, str(target)]
        line = one_line_error(runner.invoke(cli.app, args))
        assert str(target) in line and "missing" not in line
        args = ["synth", str(target), "--train", "1", "--val", "0", "--test", "0"]
        line = one_line_error(runner.invoke(cli.app, [*args, "--size", "32"]))
        assert str(target) in line


# --- 2. predict inputs: folders, globs, duplicates ----------------------------------------


def test_predict_takes_folders_globs_and_drops_repeats(run_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "scenes"
    a = picture(data / "a.png")
    picture(data / "b.JPG")
    write_geotiff(data / "c.tif", np.full((3, 20, 20), 50, np.uint8))
    picture(data / "deep" / "d.png")
    (data / "README.txt").write_text("not an image")
    (data / ".DS_Store").write_bytes(b"\0")
    out = tmp_path / "out"
    res = predict(run_dir, out, data, a, str(data / "*.png"))
    assert res.exit_code == 0, res.output
    assert "3 inputs:" in res.stdout and str(a) in res.stdout
    assert sorted(p.name for p in out.glob("*_classes.*")) == [
        "a_classes.png",
        "b_classes.png",
        "c_classes.tif",
    ]
    res = predict(run_dir, tmp_path / "rec", data, "--recursive")
    assert res.exit_code == 0 and "4 inputs:" in res.stdout, res.output
    assert (tmp_path / "rec" / "d_classes.png").is_file()
    res = predict(run_dir, tmp_path / "glob", str(tmp_path / "**" / "d.png"))
    assert res.exit_code == 0 and "1 input:" in res.stdout, res.output


@pytest.mark.parametrize("kind", ["pattern", "missing", "empty folder"])
def test_predict_input_matching_nothing_is_one_line(
    run_dir: Path, tmp_path: Path, kind: str
) -> None:
    good = picture(tmp_path / "good.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    bad = {"pattern": tmp_path / "*.tif", "missing": tmp_path / "nope.png", "empty folder": empty}
    line = one_line_error(predict(run_dir, tmp_path / "out", good, bad[kind]))
    assert str(bad[kind]) in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# --- 3. outputs that survive a crash ------------------------------------------------------


def _raise_disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (cog.CogRows, "finish"),  # the class, confidence or probabilities COG
        (scene_outputs._PngRows, "finish"),  # the preview or class PNG
        (scene_outputs._Bytes, "finish"),  # the area tables
    ],
)
def test_predict_crash_mid_write_leaves_no_output(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Any, name: str
) -> None:
    tif = write_geotiff(tmp_path / "in" / "scene.tif", np.full((3, 40, 40), 70, np.uint8))
    png = picture(tmp_path / "in" / "photo.png")
    calls = {"n": 0}
    original: Callable[..., None] = getattr(target, name)

    def fail_second(self: Any) -> None:  # some files completed, then the disk is full
        calls["n"] += 1
        if calls["n"] == 2:
            _raise_disk_full()
        original(self)

    monkeypatch.setattr(target, name, fail_second)
    out = tmp_path / "out"
    res = predict(run_dir, out, tif, png, extra=("--probabilities",))
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "No space left" in res.stderr
    left = sorted(p.name for p in out.iterdir())
    failed = "scene" if "scene.tif" in res.stderr.split("inputs failed:")[-1] else "photo"
    assert not [n for n in left if n.startswith(failed)], left
    assert not [n for n in left if n.startswith(".")], left  # no temporary file left


def test_skip_existing_redoes_only_incomplete_inputs(run_dir: Path, tmp_path: Path) -> None:
    first, second = picture(tmp_path / "first.png"), picture(tmp_path / "second.png", 30)
    out = tmp_path / "out"
    assert predict(run_dir, out, first, second).exit_code == 0
    kept = (out / "first_classes.png").stat().st_mtime_ns
    (out / "second_areas.json").unlink()
    res = predict(run_dir, out, first, second, extra=("--skip-existing",))
    assert res.exit_code == 0, res.output
    assert "1 input:" in res.stdout and "skipped, outputs complete:" in res.stdout
    assert (out / "second_areas.json").is_file()
    assert (out / "first_classes.png").stat().st_mtime_ns == kept


# --- prepare: killed, then resumed ----------------------------------------------------------


@pytest.fixture(scope="module")
def two_tiles(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    from test_prepare import make_scene

    scene = make_scene(tmp_path_factory.mktemp("scene"))
    second = scene.image.with_name("S2_T35SLD.tif")
    shutil.copy(scene.image, second)
    return [scene.image, second], scene.labels


def prepare(tiles: tuple[list[Path], Path], out: Path, *extra: str) -> Any:
    images, labels = tiles
    args = ["prepare", str(out), "--labels", str(labels), "--patch", "16", "--bands", "3,2,1"]
    for image in images:
        args += ["--imagery", str(image)]
    return runner.invoke(cli.app, [*args, "--block", "2", *extra])


@pytest.fixture(scope="module")
def uninterrupted(
    two_tiles: tuple[list[Path], Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("whole") / "out"
    assert prepare(two_tiles, out).exit_code == 0
    return files_under(out)


class Killed(BaseException):
    """Stands for SIGKILL: nothing in lale catches it, no clean-up runs after it."""


@pytest.mark.parametrize("when", ["first tile", "second tile", "distribution"])
def test_prepare_killed_then_rerun_gives_the_same_files(
    two_tiles: tuple[list[Path], Path],
    uninterrupted: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    out = tmp_path / "out"
    count = {"n": 0}
    if when == "distribution":
        original_replace = os.replace

        def replace(src: Any, dst: Any) -> None:
            if Path(dst).parent.name == "masks" and Path(dst).parent.parent.name == "train":
                count["n"] += 1
                if count["n"] == 5:
                    raise Killed
            original_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
    else:
        limit = 3 if when == "first tile" else len(uninterrupted) // 2 + 3
        original_write = prepare_cut.write_bytes_atomic

        def write(path: Path, data: bytes) -> None:
            count["n"] += 1
            if count["n"] == limit:  # a patch's mask half-written when the kill comes
                tmp = path.with_name(f".{path.name}.k1ll3d.tmp")
                tmp.write_bytes(data[: len(data) // 2])
                raise Killed
            original_write(path, data)

        monkeypatch.setattr(prepare_cut, "write_bytes_atomic", write)
    with pytest.raises(Killed):
        prepare(two_tiles, out, "--seed", "0")
    monkeypatch.undo()
    assert not (out / "prepare.json").exists()
    journal = out / ".staging" / prepare_cut.JOURNAL
    tiles_done = {"first tile": 0, "second tile": 1, "distribution": 2}[when]
    assert (len(journal.read_text().splitlines()) if journal.exists() else 0) == tiles_done
    if when == "distribution":
        assert len(list((out / "train" / "masks").iterdir())) == 4
    if when != "distribution":
        assert list(out.rglob(".*.k1ll3d.tmp"))  # what a kill leaves of an atomic write
    changed = prepare(two_tiles, out, "--seed", "1")
    assert "interrupted preparation" in one_line_error(changed)
    res = prepare(two_tiles, out)
    assert res.exit_code == 0, res.output
    assert files_under(out) == uninterrupted
