"""``lale pack`` and training / evaluating from shards: the same as from the folder, resumable.

A dataset packed as LitData shards must train to the same weights and metrics (same seed), report
the same unknown mask colours and evaluate the same as its folder; a two-rank DDP run killed
mid-epoch resumes with every training image seen exactly once in the epoch; a Hugging Face
Parquet dataset packs to the same shards as the folder its bytes came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from lale import cli
from lale.data.synthetic import write_dataset

runner = CliRunner()
TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}
PROBE = Path(__file__).parent / "scripts" / "shard_resume_probe.py"

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
]


def _ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def _error(result: Any, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def _pack(data: Path, out: Path, *extra: str) -> Any:
    return runner.invoke(cli.app, ["pack", str(data), f"--out={out}", *extra])


def _train(data: Path, out: Path) -> Any:
    args = ["train", f"--data={data}", f"--out={out}", "--epochs=1", "--batch-size=4"]
    args += ["--crop-size=48", "--no-progress"]
    args += [f"--model-arg={k}={json.dumps(v)}" for k, v in TINY.items()]
    return _ok(runner.invoke(cli.app, args))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small dataset; one training mask has pixels of a colour outside the schema."""
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=8, val=2, test=2, size=64, seed=0)
    mask = sorted((root / "train" / "masks").glob("*.png"))[3]
    rgb = np.asarray(Image.open(mask).convert("RGB")).copy()
    rgb[:5, :7] = (1, 2, 3)
    Image.fromarray(rgb).save(mask)
    return root


@pytest.fixture(scope="module")
def shards(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "shards"
    result = _ok(_pack(data, out, "--shard-size=20KB"))
    assert "train" in result.stdout and (out / "lale-shards.json").is_file()
    assert len(list((out / "train").glob("chunk-*.bin"))) > 1  # several shards per split
    return out


def test_shards_train_and_evaluate_as_the_folder(data: Path, shards: Path, tmp_path: Path) -> None:
    from_folder, from_shards = tmp_path / "folder", tmp_path / "shards"
    _train(data, from_folder)
    _train(shards, from_shards)
    for name in ("test_metrics.json", "model.safetensors"):
        assert (from_folder / name).read_bytes() == (from_shards / name).read_bytes(), name
    unknown = [
        json.loads((run / "unknown_colours.json").read_text()) for run in (from_folder, from_shards)
    ]
    assert unknown[0] == unknown[1] and unknown[0]["train"]  # the same files, colours, counts
    scores = []
    for root in (data, shards):
        out = tmp_path / f"{root.name}.json"
        args = ["evaluate", f"--run={from_folder}", f"--data={root}", "--split=val"]
        _ok(runner.invoke(cli.app, [*args, f"--json={out}"]))
        scores.append({k: v for k, v in json.loads(out.read_text()).items() if k != "data"})
    assert scores[0] == scores[1]


def test_pack_refuses_a_used_out_and_bad_input(data: Path, tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    assert "not an empty folder" in _error(_pack(data, used), 2)
    assert "--shard-size" in _error(_pack(data, tmp_path / "s", "--shard-size=big"), 2)
    broken = tmp_path / "broken"
    write_dataset(broken, train=2, val=1, test=1, size=32, seed=1)
    bad = sorted((broken / "val" / "images").glob("*.png"))[0]
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    line = _error(_pack(broken, tmp_path / "out"), 2)
    assert str(bad) in line
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))  # nothing left


def _parquet(data: Path, folder: Path) -> None:
    """``data`` as ``datasets`` saves it: Image-feature structs, validation renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    for split, name in (("train", "train"), ("val", "validation"), ("test", "test")):
        rows = []
        for image in sorted((data / split / "images").iterdir()):
            mask = data / split / "masks" / image.name
            rows.append(
                {
                    "image": {"bytes": image.read_bytes(), "path": image.name},
                    "mask": {"bytes": mask.read_bytes(), "path": mask.name},
                }
            )
        pq.write_table(pa.Table.from_pylist(rows), folder / f"{name}-00000-of-00001.parquet")


def test_hugging_face_parquet_packs_as_its_folder(data: Path, shards: Path, tmp_path: Path) -> None:
    _parquet(data, tmp_path / "hf")
    out = tmp_path / "from-parquet"
    assert "parquet" in _ok(_pack(tmp_path / "hf", out, "--shard-size=20KB")).stdout
    for split in ("train", "val", "test"):
        for name in ["lale-index.json", *(p.name for p in (shards / split).glob("chunk-*.bin"))]:
            assert (out / split / name).read_bytes() == (shards / split / name).read_bytes()
    drafts = []  # lale schema init reads the shards' masks as it reads the folder's
    for root in (data, out):
        target = tmp_path / f"{root.name}-schema.json"
        _ok(runner.invoke(cli.app, ["schema", "init", str(root), f"--out={target}"]))
        drafts.append(json.loads(target.read_text())["classes"])
    assert drafts[0] == drafts[1]
    missing = tmp_path / "nomask"
    missing.mkdir()
    _parquet(data, missing / "p")
    import pyarrow.parquet as pq

    file = missing / "p" / "test-00000-of-00001.parquet"
    pq.write_table(pq.read_table(file).drop_columns(["mask"]), file)
    line = _error(_pack(missing, tmp_path / "x"), 2)
    assert "no mask column" in line and file.name in line


def _digests(data: Path) -> list[str]:
    """sha256 of each training image as the loader delivers it (uint8 C×H×W)."""
    return sorted(
        hashlib.sha256(
            np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1).tobytes()
        ).hexdigest()
        for p in (data / "train" / "images").glob("*.png")
    )


def _phase(phase: str, shards: Path, out: Path, log: Path) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    env.pop("MASTER_PORT", None)
    done = subprocess.run(
        [sys.executable, str(PROBE), phase, str(shards), str(out), str(log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert phase == "kill" or done.returncode == 0, done.stderr[-3000:]
    return done.returncode


@pytest.mark.slow
def test_killed_ddp_run_resumes_without_repeating_or_skipping(tmp_path: Path) -> None:
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    data, shards, out, log = (tmp_path / n for n in ("data", "shards", "run", "log"))
    write_dataset(data, train=16, val=2, test=2, size=64, seed=0)
    _ok(_pack(data, shards, "--shard-size=20KB"))
    assert _phase("kill", shards, out, log) == -9  # killed, not finished
    assert not (out / "test_metrics.json").exists()
    _phase("resume", shards, out, log)
    assert (out / "test_metrics.json").is_file()
    seen: dict[str, list[list[str]]] = {}
    for rank in (0, 1):
        for phase in ("kill", "resume"):
            lines = (log / f"{phase}-rank{rank}.jsonl").read_text().splitlines()
            seen.setdefault(phase, []).append(
                [d for s in map(json.loads, lines) for d in s["images"]]
            )
    assert [len(s) for s in seen["kill"]] == [4, 4]  # 2 steps of 2 images per rank
    assert [len(s) for s in seen["resume"]] == [4, 4]  # the 2 steps left
    trained = [d for phase in seen.values() for rank in phase for d in rank]
    assert sorted(trained) == _digests(data)  # every image once: none repeated, none skipped


def test_geotiff_samples_read_from_shards_as_from_files(tmp_path: Path) -> None:
    from rasters import write_geotiff

    from lale.data.dataset import SegmentationDataset
    from lale.data.schema import load_schema

    schema_file = tmp_path / "four.yaml"
    schema_file.write_text(
        "name: four\nclasses:\n  - {name: a, value: 1}\n  - {name: b, value: 2}\n"
        "ignore_values: [0]\n"
        "image: {band_count: 4, bands: [3, 2, 1], dtype: uint16, scale: 10000,\n"
        "        mean: [0.1, 0.1, 0.1], std: [0.05, 0.05, 0.05]}\n"
    )
    rng = np.random.default_rng(0)
    data = tmp_path / "tif"
    for split in ("train", "val"):
        for i in range(3):
            size = (40, 56) if i else (24, 24)  # one smaller than the crop: padded
            image = rng.integers(0, 10000, (4, *size), dtype=np.uint16)
            labels = rng.integers(0, 4, (1, *size), dtype=np.uint8)  # 3: not in the schema
            write_geotiff(data / split / "images" / f"p{i}.tif", image)
            write_geotiff(data / split / "masks" / f"p{i}.tif", labels)
    _ok(_pack(data, tmp_path / "s", f"--schema={schema_file}"))
    schema = load_schema(tmp_path / "s" / "schema.json")
    for split in ("train", "val"):
        a = SegmentationDataset(data, split, schema, crop_size=32)
        b = SegmentationDataset(tmp_path / "s", split, schema, crop_size=32)
        for i in range(3):
            for x, y in zip(a.sample(i, 7 + i), b.sample(i, 7 + i), strict=True):
                assert torch.equal(x, y)
        assert a.unknown_pixels() == b.unknown_pixels() and a.unknown_pixels().counts
