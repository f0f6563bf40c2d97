"""Draw docs/images/architecture.png: lale's layers as tests/test_architecture.py enforces them.

    .venv/bin/python docs/scripts/architecture_figure.py [OUT.png]

The layers are read from that test (``LAYERS``, lowest first: a unit imports only units of lower
rows), and each package's module and line counts from ``src/lale``, when the script runs.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "lale"

WHAT = {
    "errors": "exit codes",
    "atomic": "atomic writes",
    "run_layout": "run file names",
    "formatting": "",
    "progress": "",
    "_torchvision_compat": "",
    "output_paths": "outputs checked first",
    "weights": "safetensors I/O",
    "models": "LALE, baselines, frontier, registry, timm, transfer",
    "data": "schema → io → shards, prepare → datasets, synthetic → survey",
    "profiling": "params, GMACs, throughput, paper table",
    "recipe": "the training recipe",
    "run_config": "a run's config.json",
    "hub": "model cards, the Hub",
    "runs": "run directories: config + weights",
    "training": "Lightning loop, losses, metrics, pretraining",
    "inference": "tiling, predict, COG, polygons, ONNX",
    "benchmark": "models × seeds, statistics, claims, report",
    "maps": "areas by zone, change between maps",
    "federated": "Flower: sites, rounds, checkpoints",
    "demo": "the main job",
    "cli": "the lale command: one module per group",
}
COLOURS = [
    "#eeeeee",
    "#e4e4e4",
    "#d9ead3",
    "#e2efd9",
    "#fff2cc",
    "#fff2cc",
    "#cfe2f3",
    "#fce5cd",
    "#fce5cd",
    "#ead1dc",
]


def size(unit: str) -> str:
    folder = SRC / unit
    if not folder.is_dir():
        return f"{unit}.py"
    files = list(folder.rglob("*.py"))
    lines = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)
    return f"{unit}/ · {len(files)} modules · {lines / 1000:.1f} k lines"


def main(out: Path) -> None:
    layers = runpy.run_path(str(ROOT / "tests" / "test_architecture.py"))["LAYERS"]
    rows = len(layers)
    fig, ax = plt.subplots(figsize=(12, 0.62 * rows + 0.8))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, rows * 0.62 + 0.5)
    ax.axis("off")
    for row, units in enumerate(layers):
        y = 0.1 + row * 0.62
        units = [u for u in units if u != "_torchvision_compat"]
        width = 11.4 / len(units)
        for col, unit in enumerate(units):
            x = 0.3 + col * width
            ax.add_patch(
                FancyBboxPatch(
                    (x, y),
                    width - 0.15,
                    0.5,
                    boxstyle="round,pad=0.02",
                    facecolor=COLOURS[row % len(COLOURS)],
                    edgecolor="#666666",
                )
            )
            ax.text(
                x + 0.1,
                y + 0.34,
                size(unit),
                fontsize=8.5,
                family="monospace",
                weight="bold",
                va="center",
            )
            ax.text(x + 0.1, y + 0.13, WHAT.get(unit, ""), fontsize=8, va="center")
    ax.text(
        0.3,
        rows * 0.62 + 0.22,
        "lale, bottom to top: a package imports only from the rows "
        "below it (tests/test_architecture.py)",
        fontsize=11,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images" / "architecture.png")
