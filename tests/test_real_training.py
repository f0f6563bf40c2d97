"""End to end on real Sentinel-2 patches nobody here made: train, evaluate, predict a GeoTIFF.

A subset of the shared ``amazon-forest`` set (512² uint8 RGB GeoTIFFs in EPSG:4326, binary
palette masks, its own ``schema.json``), including the pair whose mask is 515 px wide against a
512 px image — the set's one real defect — which ``--skip-bad-pairs`` leaves out and names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lale import cli

AMAZON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon-forest"
BAD = "Amazon_181.tiff_34"  # its mask is 512×515
runner = CliRunner()

pytestmark = [
    pytest.mark.skipif(not AMAZON.is_dir(), reason=f"real amazon-forest set not at {AMAZON}"),
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
    pytest.mark.slow,
]


def _subset(root: Path) -> Path:
    """Four training pairs (the bad one among them), two val and two test pairs."""
    root.mkdir()
    shutil.copy(AMAZON / "schema.json", root / "schema.json")
    train = sorted(p.stem for p in (AMAZON / "train" / "images").iterdir())
    picks = {"train": [BAD, *[n for n in train if n != BAD][:3]]}
    for split in ("val", "test"):
        picks[split] = sorted(p.stem for p in (AMAZON / split / "images").iterdir())[:2]
    for split, names in picks.items():
        for kind, ext in (("images", ".tif"), ("masks", ".png")):
            (root / split / kind).mkdir(parents=True)
            for name in names:
                shutil.copy(AMAZON / split / kind / f"{name}{ext}", root / split / kind)
    return root


def test_train_evaluate_and_predict_on_real_patches(tmp_path: Path) -> None:
    import rasterio

    data = _subset(tmp_path / "amazon")
    run = tmp_path / "run"
    args = ["train", f"--data={data}", f"--out={run}", "--model=lale_t", "--max-steps=4"]
    args += ["--batch-size=2", "--crop-size=128", "--no-progress"]
    refused = runner.invoke(cli.app, args)
    assert refused.exit_code == 2 and f"{BAD}.png" in refused.stderr  # the default: an error
    assert "512×515" in refused.stderr and not run.exists()
    result = runner.invoke(cli.app, [*args, "--skip-bad-pairs"])
    assert result.exit_code == 0, result.output
    (warning,) = [x for x in result.stdout.splitlines() if "bad image/mask pairs" in x]
    assert warning.startswith("warning: train split: skipped 1 bad image/mask pairs: ")
    assert f"{BAD}.png" in warning and "512×515" in warning
    assert json.loads((run / "skipped_pairs.json").read_text())["train"][0]["name"] == BAD
    config = json.loads((run / "config.json").read_text())
    assert [c["name"] for c in config["class_schema"]["classes"]] == ["forest", "non_forest"]
    tested = json.loads((run / "test_metrics.json").read_text())
    assert set(tested["per_class"]) == {"forest", "non_forest"}
    assert tested["pixels"] == 2 * 512 * 512  # the two test masks, every pixel labelled

    scores = tmp_path / "eval.json"
    args = ["evaluate", f"--run={run}", f"--data={data}", "--split=test", f"--json={scores}"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(scores.read_text())["confusion_matrix"] == tested["confusion_matrix"]

    image = sorted((data / "test" / "images").iterdir())[0]
    maps = tmp_path / "maps"
    args = ["predict", "--run", str(run), "--out", str(maps), str(image), "--no-progress"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    with rasterio.open(image) as src, rasterio.open(maps / f"{image.stem}_classes.tif") as out:
        assert out.crs == src.crs and out.transform == src.transform
        assert out.shape == src.shape == (512, 512)
        values = set(out.read(1).ravel().tolist())
    assert values <= {0, 1}  # forest / non-forest, no no-data in a fully valid patch
    areas = json.loads((maps / f"{image.stem}_areas.json").read_text())
    assert {row["class"] for row in areas["classes"]} >= {"forest", "non_forest"}
