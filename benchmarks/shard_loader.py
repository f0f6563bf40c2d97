"""Training loader from a folder of PNGs vs the same data packed as shards (``lale pack``).

Usage (from the repository root)::

    .venv/bin/python benchmarks/shard_loader.py                   # 100 k patches
    .venv/bin/python benchmarks/shard_loader.py --patches 20000 --workers 0 2

Builds a synthetic ARAS400k-layout training split of ``--patches`` 256² patches (``--distinct``
scenes generated, the rest written as byte copies under their own names, so that generation does
not dominate), packs it with ``lale pack`` (``--shard-size``), and times lale's real training
loader (:class:`~lale.training.datamodule.LandCoverDataModule`: the resumable sampler over the
whole split in a seeded random order, PNG decode, colour-mask lookup) on both, for each worker
count, in interleaved rounds with lale_t training steps (batch 24, fp32, CPU) between them:

- **images/s** over ``--batches`` batches per round (median over rounds), against the training
  consumption;
- **time to the first batch** of a fresh loader (its workers started);
- **files opened** (``open`` audit events on ``.png``/``.bin`` files, in all processes) per
  image, and per epoch extrapolated to the whole split;
- **raw item reads** (bytes only, no decode) in random order: files, LitData chunks, Parquet
  row groups — the measurement behind the choice of engine.

Writes ``benchmarks/results/shard_loader.json`` and ``shard_loader.md``; the data are deleted.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lale.data.schema import ARAS400K
from lale.data.shards.pack import pack_dataset, parse_shard_size
from lale.data.synthetic import write_dataset
from lale.profiling import collect_environment
from lale.training.datamodule import LandCoverDataModule

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loader_throughput import step, training_setup

RESULTS = Path(__file__).resolve().parent / "results"
OPENS = mp.Value(ctypes.c_longlong, 0)


def _count_opens(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and isinstance(args[0], str) and args[0].endswith((".png", ".bin")):
        with OPENS.get_lock():
            OPENS.value += 1


def make_split(root: Path, patches: int, distinct: int) -> None:
    """``root/train`` with ``patches`` samples (``distinct`` generated, the rest byte copies)."""
    write_dataset(root, train=distinct, val=0, test=0, size=256, workers=2)
    for empty in ("val", "test"):
        shutil.rmtree(root / empty, ignore_errors=True)
    images, masks = root / "train" / "images", root / "train" / "masks"
    seeds = sorted(p.name for p in images.iterdir())
    for i in range(distinct, patches):
        src = seeds[i % distinct]
        name = f"copy_{i:07d}.png"
        (images / name).write_bytes((images / src).read_bytes())
        (masks / name).write_bytes((masks / src).read_bytes())


def build(root: Path, batch: int) -> tuple[LandCoverDataModule, dict[str, float]]:
    """The data module with its training split listed (and, for a folder, headers checked)."""
    OPENS.value = 0
    start = time.perf_counter()
    data = LandCoverDataModule(root, ARAS400K, batch_size=batch, seed=0)
    data.split("train")
    return data, {"build_s": time.perf_counter() - start, "build_opens": OPENS.value}


def timed(data: LandCoverDataModule, workers: int, batches: int) -> dict[str, float]:
    """First-batch latency, images/s and file opens over ``batches`` batches of a fresh loader."""
    data.workers, batch = workers, data.batch_size
    OPENS.value = 0
    start = time.perf_counter()
    it = iter(data.train_dataloader())
    next(it)
    first = time.perf_counter() - start
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        n += next(it)[0].shape[0]
    seconds = time.perf_counter() - start
    del it
    return {"first_batch_s": first, "images_per_s": n / seconds, "opens": OPENS.value / (n + batch)}


def raw_reads(folder: Path, shards: Path, parquet: Path, n: int) -> dict[str, float]:
    """Microseconds per item to fetch the encoded image + mask bytes, in random order."""
    import pyarrow.parquet as pq

    from lale.data.dataset import scan_split
    from lale.data.shards import ShardStore

    pairs = scan_split(folder, "train")
    order = random.Random(0).sample(range(len(pairs)), min(n, len(pairs)))
    out: dict[str, float] = {}
    start = time.perf_counter()
    for i in order:
        pairs[i].image.read_bytes()
        pairs[i].mask.read_bytes()
    out["folder files"] = (time.perf_counter() - start) / len(order) * 1e6
    store = ShardStore(shards / "train")
    store.read(0, "image")
    start = time.perf_counter()
    for i in order:
        store.read(i, "image")
        store.read(i, "mask")
    out["LitData chunks"] = (time.perf_counter() - start) / len(order) * 1e6
    table, cached, rows = pq.ParquetFile(parquet), -1, None
    per = table.metadata.row_group(0).num_rows
    start = time.perf_counter()
    for i in order:
        if i // per != cached:  # a reader keeps the last row group
            cached, rows = i // per, table.read_row_group(i // per)
        assert rows is not None
        rows.slice(i % per, 1).to_pylist()
    out["Parquet row groups"] = (time.perf_counter() - start) / len(order) * 1e6
    return out


def write_parquet(folder: Path, path: Path, rows_per_group: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lale.data.dataset import scan_split

    schema = pa.schema([("image", pa.binary()), ("mask", pa.binary())])
    with pq.ParquetWriter(path, schema) as writer:
        pairs = scan_split(folder, "train")
        for k in range(0, len(pairs), rows_per_group):
            chunk = pairs[k : k + rows_per_group]
            writer.write_table(
                pa.table(
                    {
                        "image": [p.image.read_bytes() for p in chunk],
                        "mask": [p.mask.read_bytes() for p in chunk],
                    },
                    schema=schema,
                )
            )


def markdown(result: dict[str, Any], command: str) -> str:
    env, s = result["environment"], result["settings"]
    v = env["versions"]
    need = result["training"]["images_per_s"]
    lines = [
        "# Training loader: folder of PNGs vs LitData shards",
        "",
        f"Generated by `{command}`. {s['patches']:,} synthetic 256² patches ({s['distinct']} "
        f"generated, the rest byte copies), packed with `lale pack --shard-size "
        f"{s['shard_size']}` ({result['pack']['shards']} shards, {result['pack']['seconds']:.0f} s"
        f" to pack). lale's training loader (resumable seeded sampler over the whole split, "
        f"batch {s['batch']}), {s['batches']} batches per round, median of {s['rounds']} "
        "interleaved rounds.",
        "",
        f"- **device**: {env['device']} ({env['device_type']}), {env['cpu_count']} logical CPUs;"
        f" {env['platform']}",
        f"- **versions**: python {v['python']}, torch {v['torch']}, litdata "
        f"{result['versions']['litdata']}, pyarrow {result['versions']['pyarrow']}, lale "
        f"{v['lale']}",
        f"- **date**: {env['date']}; load average before/after "
        f"{result['load'][0][0]:.1f}/{result['load'][1][0]:.1f} (a shared machine)",
        f"- **training consumption** (lale_t, fp32, batch {s['batch']}, CPU): {need:.1f} images/s",
        "",
        "| data | workers | images/s | × training | first batch s | files opened / image "
        "| files opened / epoch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["loader"]:
        lines.append(
            f"| {r['data']} | {r['workers']} | {r['images_per_s']:.0f} | "
            f"{r['images_per_s'] / need:.1f}× | {r['first_batch_s']:.2f} | "
            f"{r['opens']:.3f} | {r['opens'] * s['patches']:,.0f} |"
        )
    b = result["build"]
    lines += [
        "",
        f"Opening the split before the first epoch: folder {b['folder']['build_s']:.1f} s "
        f"({b['folder']['build_opens']:,} files opened: listing and every header checked), "
        f"shards {b['shards']['build_s']:.1f} s ({b['shards']['build_opens']:,} files; the sizes "
        "were checked and recorded by `lale pack`). First batch: a fresh loader, its workers "
        "started.",
        "",
        "Files opened per epoch are extrapolated from the timed batches (opens per image × "
        "patches). Raw reads of the encoded image + mask bytes in random order, per item "
        f"({result['raw']['items']} items; Parquet with {s['row_group']} rows per row group and "
        "the last row group kept):",
        "",
        "| store | µs per item |",
        "| --- | ---: |",
    ]
    for name, us in result["raw"]["us_per_item"].items():
        lines.append(f"| {name} | {us:.0f} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--patches", type=int, default=100_000, help="patches in the split")
    p.add_argument("--distinct", type=int, default=64, help="patches generated")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2, os.cpu_count() or 1])
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--batches", type=int, default=20, help="timed batches per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=1, help="training steps per round")
    p.add_argument("--shard-size", default="256MB")
    p.add_argument("--row-group", type=int, default=256, help="Parquet rows per row group")
    p.add_argument("--raw-items", type=int, default=2000)
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import litdata
    import pyarrow

    args = parse_args(argv)
    workers = sorted(set(args.workers))
    load_before = os.getloadavg()
    sys.addaudithook(_count_opens)
    with tempfile.TemporaryDirectory(prefix="lale-shards-") as tmp:
        folder, shards = Path(tmp) / "folder", Path(tmp) / "shards"
        print(f"writing {args.patches} patches …", flush=True)
        make_split(folder, args.patches, args.distinct)
        start = time.perf_counter()
        summary = pack_dataset(folder, shards, shard_size=parse_shard_size(args.shard_size))
        pack = {"seconds": time.perf_counter() - start, "shards": summary.splits[0].shards}
        print(f"packed in {pack['seconds']:.0f} s", flush=True)
        write_parquet(folder, Path(tmp) / "train.parquet", args.row_group)
        raw = raw_reads(folder, shards, Path(tmp) / "train.parquet", args.raw_items)
        model, opt, x, y = training_setup(args.batch, 256)
        step(model, opt, x, y)
        modules = {
            name: build(root, args.batch) for name, root in (("folder", folder), ("shards", shards))
        }
        runs: dict[tuple[str, int], list[dict[str, float]]] = {}
        steps: list[float] = []
        for r in range(args.rounds):
            for w in workers:
                for name, (module, _) in modules.items():
                    runs.setdefault((name, w), []).append(timed(module, w, args.batches))
            for _ in range(args.steps):
                start = time.perf_counter()
                step(model, opt, x, y)
                steps.append(time.perf_counter() - start)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    loader_rows = [
        {
            "data": name,
            "workers": w,
            **{k: statistics.median(t[k] for t in times) for k in times[0]},
            "rounds": times,
        }
        for (name, w), times in runs.items()
    ]
    result = {
        "benchmark": "shard_loader",
        "environment": asdict(collect_environment("cpu")),
        "versions": {"litdata": litdata.__version__, "pyarrow": pyarrow.__version__},
        "load": [load_before, os.getloadavg()],
        "settings": {
            "patches": args.patches,
            "distinct": args.distinct,
            "workers": workers,
            "batch": args.batch,
            "batches": args.batches,
            "rounds": args.rounds,
            "steps_per_round": args.steps,
            "shard_size": args.shard_size,
            "row_group": args.row_group,
        },
        "pack": pack,
        "build": {name: info for name, (_, info) in modules.items()},
        "raw": {"items": min(args.raw_items, args.patches), "us_per_item": raw},
        "training": {
            "step_s": steps,
            "images_per_s": args.batch / statistics.median(steps),
        },
        "loader": loader_rows,
    }
    for row in loader_rows:
        print(f"{row['data']:7s} workers {row['workers']}: {row['images_per_s']:.0f} img/s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "shard_loader.json").write_text(json.dumps(result, indent=2) + "\n")
    command = "python benchmarks/shard_loader.py " + " ".join(sys.argv[1:])
    (args.out / "shard_loader.md").write_text(markdown(result, command.strip()))
    print(f"wrote {args.out / 'shard_loader.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
