"""``lale train`` and ``lale evaluate``: thin commands over :mod:`lale.training`."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from lale.cli._common import add_command, fail, progress_bar, say_on, stdout
from lale.cli.schema import SCHEMA_EXAMPLE_JSON, SCHEMA_EXAMPLE_YAML

BnStatsOption = Literal["running", "recompute"]

# The hardware options of the commands that train (lale train, lale pretrain), declared once.
Precision = Annotated[
    str | None, typer.Option(help="Lightning precision [bf16-mixed on GPU, else 32-true].")
]
Accelerator = Annotated[str, typer.Option(help="auto, cpu or gpu.")]
Devices = Annotated[str, typer.Option(help="Devices per node (number or 'auto').")]
NumNodes = Annotated[int, typer.Option(min=1, help="Nodes.")]
Strategy = Annotated[str, typer.Option(help="auto, ddp, ...")]
Workers = Annotated[int, typer.Option(min=0, help="Data-loader workers.")]
CheckpointEvery = Annotated[
    int, typer.Option(min=0, help="Save resumable state every N steps (and each epoch).")
]

if TYPE_CHECKING:
    from rich.console import Console


# Plain text: rich markup is off, so brackets print as written.
TRAIN_EPILOG = (
    "Class schema files (--schema FILE): each class has a name and a mask colour ([r, g, b] or "
    "#rrggbb) for colour masks, or a value for single-band masks; colours or values of no "
    "class become the ignore label and are reported. Example JSON:\n\n"
    + SCHEMA_EXAMPLE_JSON
    + "\n\nExample YAML (index masks, 16-bit 4-band images scaled by 1/10000):\n\n"
    + SCHEMA_EXAMPLE_YAML
)


def _model_args(items: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON (numbers, lists, strings) or plain strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise fail(f"--model-arg expects key=value, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _weights(value: str | None) -> tuple[str | None, tuple[float, ...] | None]:
    if value is None or value == "auto":
        return value, None
    try:
        return None, tuple(float(v) for v in value.split(","))
    except ValueError:
        message = f"--class-weights expects 'auto' or comma-separated numbers, got {value!r}"
        raise fail(message) from None


def hardware_options(
    workers: int, accelerator: str, devices: str, num_nodes: int, strategy: str, **more: Any
) -> dict[str, Any]:
    """The run options a training command takes from its hardware flags (``devices`` parsed)."""
    return {
        "workers": workers,
        "accelerator": accelerator,
        "devices": int(devices) if devices.isdigit() else devices,
        "num_nodes": num_nodes,
        "strategy": strategy,
        **more,
    }


def _quiet_lightning() -> None:
    """Keep the terminal to lale's own output: Lightning's banners and tips go to the log."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")


def _summary(console: Console, result: Any) -> None:
    from lale.training.metrics import scores_table

    if result.best_score is not None:
        console.print(
            f"best validation macro-F1 {result.best_score:.2%} at epoch {result.best_epoch} "
            f"({result.epochs_run} epochs run{', stopped early' if result.stopped_early else ''})"
        )
    if result.test_scores is not None:
        console.print(scores_table(result.test_scores, title="test split"))
    console.print(f"run directory: {escape(str(result.run_dir))}")


CacheDir = Annotated[
    Path | None,
    typer.Option(
        help="Remote shard sets: where their index files and cached chunks live "
        "[$XDG_CACHE_HOME/lale/shards]."
    ),
]
CacheLimit = Annotated[
    str,
    typer.Option(
        help="Remote shard sets: disk the cached chunks may take; a set larger than this "
        "is read by byte ranges, nothing kept."
    ),
]


def _data_root(data: str, cache_dir: Path | None, cache_limit: str, console: Console) -> Path:
    """The local root of ``--data``: itself, or the mirror of a remote shard set."""
    from lale.data.shards.remote import (
        is_remote_shards,
        open_remote_shards,
        parse_cache_limit,
        read_remote,
    )

    if not is_remote_shards(data):
        return Path(data)
    try:
        limit = parse_cache_limit(cache_limit)
    except ValueError as err:
        raise fail(f"--cache-limit: {err}") from None
    root = open_remote_shards(data, cache_dir, limit)
    remote = read_remote(root)
    how = "chunks cached" if remote and remote.cached else "samples read by byte ranges"
    console.print(f"streaming {escape(data)} ({how}; index files in {escape(str(root))})")
    return root


def train_command(
    data: Annotated[
        str | None,
        typer.Option(
            help="Dataset root ({split}/{images,masks}), a shard set from lale pack, or a "
            "shard set in object storage (s3://, gs://, azure://) [required unless --resume]."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory to create [required unless --resume].")
    ] = None,
    cache_dir: CacheDir = None,
    cache_limit: CacheLimit = "20GB",
    model: Annotated[str, typer.Option(help="Registered model name (lale models).")] = "lale_t",
    resume: Annotated[
        Path | None, typer.Option(help="Continue this run directory where it stopped [a new run].")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Maximum epochs [20].")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per step and device.")] = 24,
    lr: Annotated[float, typer.Option(min=0.0, help="AdamW learning rate.")] = 1e-3,
    loss: Annotated[Literal["dice", "ce", "dice+ce"], typer.Option(help="Loss.")] = "dice",
    class_weights: Annotated[
        str | None, typer.Option(help="'auto' (from the training masks) or w0,w1,... [unweighted].")
    ] = None,
    crop_size: Annotated[int, typer.Option(min=32, help="Training crop side.")] = 256,
    samples_per_epoch: Annotated[
        int | None, typer.Option(min=1, help="Training crops per epoch [one per image].")
    ] = None,
    early_stopping: Annotated[int, typer.Option(min=0, help="Patience; 0 disables.")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="Run seed.")] = 0,
    schema: Annotated[
        str | None,
        typer.Option(
            help="Class schema: aras400k, worldcover or a .json/.yaml file (format below; "
            "lale schema init DATA writes one) [DATA/schema.json, else aras400k]."
        ),
    ] = None,
    max_unknown: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Largest share of mask pixels with colours not in the schema, per split.",
        ),
    ] = 0.5,
    init: Annotated[
        Path | None,
        typer.Option(
            help="Initialise from this run directory, a .safetensors file of the same "
            "architecture (fine-tuning), a lale pretrain run (its encoder) or hf-hub:ORG/NAME "
            "[random initialisation, or ImageNet with --pretrained]."
        ),
    ] = None,
    pretrained: Annotated[
        bool,
        typer.Option(
            "--pretrained",
            help="Baselines: start the encoder from its ImageNet weights (Hugging Face cache; "
            "fetched if missing and online).",
        ),
    ] = False,
    model_arg: Annotated[
        list[str] | None, typer.Option(help="Model option key=value (repeatable) [none].")
    ] = None,
    precision: Precision = None,
    accelerator: Accelerator = "auto",
    devices: Devices = "1",
    num_nodes: NumNodes = 1,
    strategy: Strategy = "auto",
    workers: Workers = 0,
    checkpoint_every: CheckpointEvery = 50,
    strict: Annotated[
        bool, typer.Option("--strict", help="Unknown mask colours are errors.")
    ] = False,
    skip_bad_pairs: Annotated[
        bool,
        typer.Option(
            "--skip-bad-pairs",
            help="Leave out image/mask pairs whose files fail their checks (listed in one "
            "warning and in RUN/skipped_pairs.json) instead of stopping; still an error when a "
            "split has none left.",
        ),
    ] = False,
    bn_stats: Annotated[
        BnStatsOption,
        typer.Option(
            help="Eval-mode BatchNorm statistics: running (the layers' averages) or recompute "
            "(re-estimated on fixed training crops before every validation and test; no "
            "effect on models without BatchNorm, such as LALE).",
        ),
    ] = "running",
    max_steps: Annotated[
        int, typer.Option(help="Stop after N steps (-1: no limit); validated and tested.")
    ] = -1,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train a model on an ARAS400k-layout dataset (the ARAS400k recipe by default)."""
    from lale.output_paths import check_output_dir
    from lale.recipe import Recipe
    from lale.training.run import TrainOptions, train
    from lale.training.run import resume as resume_run

    _quiet_lightning()
    console = stdout()
    hardware = hardware_options(
        workers, accelerator, devices, num_nodes, strategy, progress=progress, max_steps=max_steps
    )
    if resume is not None:
        result = resume_run(resume, epochs, hardware, say=say_on(console))
    else:
        if data is None or out is None:
            raise fail("give --data and --out (or --resume RUN_DIR)")
        check_output_dir(out, create=False)  # before any work
        root = _data_root(data, cache_dir, cache_limit, console)
        auto, weights = _weights(class_weights)
        recipe = Recipe(
            lr=lr,
            batch_size=batch_size,
            epochs=epochs or 20,
            loss=loss,
            class_weights=weights,
            crop_size=crop_size,
            early_stopping=early_stopping,
            samples_per_epoch=samples_per_epoch,
            bn_stats=bn_stats,
        )
        options = TrainOptions(
            data=root,
            out=out,
            model=model,
            model_kwargs=_model_args(model_arg),
            schema=schema,
            recipe=recipe,
            class_weights=auto,
            seed=seed,
            precision=precision,
            checkpoint_every=checkpoint_every,
            init=init,
            pretrained=pretrained,
            strict=strict,
            max_unknown=max_unknown,
            skip_bad_pairs=skip_bad_pairs,
            **hardware,
        )
        result = train(options, say=say_on(console))
    _summary(console, result)


def evaluate_command(
    run: Annotated[Path, typer.Option(help="Run directory (config.json + model.safetensors).")],
    data: Annotated[
        str,
        typer.Option(
            help="Dataset root ({split}/{images,masks}), a shard set, or a shard set in object "
            "storage (s3://, gs://, azure://)."
        ),
    ],
    split: Annotated[str, typer.Option(help="Split folder to score.")] = "test",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 8,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    workers: Annotated[int, typer.Option(min=0, help="Data-loader workers.")] = 0,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write scores here [RUN/eval_SPLIT.json].")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Unknown mask colours are errors.")
    ] = False,
    max_unknown: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Largest tolerated share of unknown mask pixels (as train)."
        ),
    ] = 0.5,
    skip_bad_pairs: Annotated[
        bool,
        typer.Option(
            "--skip-bad-pairs",
            help="Leave out image/mask pairs whose files fail their checks (listed in one "
            "warning and in the JSON) instead of stopping.",
        ),
    ] = False,
    cache_dir: CacheDir = None,
    cache_limit: CacheLimit = "20GB",
) -> None:
    """Score a trained run on a split: OA, per-class and macro F1 / IoU / precision / recall."""
    from lale.atomic import write_json_atomic
    from lale.output_paths import check_output_dir
    from lale.training.evaluate import evaluate_run
    from lale.training.metrics import scores_table

    console = stdout()
    target = json_path or run / f"eval_{split}.json"
    check_output_dir(target.parent, create=False)
    if target.is_dir():
        raise fail(f"--json {target}: is a folder")
    root = _data_root(data, cache_dir, cache_limit, console)
    with progress_bar() as bar:
        task = bar.add_task(f"evaluating {split}", total=None)
        scores = evaluate_run(
            run,
            root,
            split,
            batch_size=batch_size,
            device=device,
            workers=workers,
            strict=strict,
            max_unknown=max_unknown,
            skip_bad_pairs=skip_bad_pairs,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(scores_table(scores, title=f"{scores['model']} on {escape(str(data))} / {split}"))
    if scores.get("skipped_pairs_summary"):
        console.print(f"warning: {escape(scores['skipped_pairs_summary'])}", soft_wrap=True)
    if scores.get("skipped_files"):
        console.print(f"warning: {escape(scores['skipped_files'])}", soft_wrap=True)
    if scores.get("unknown_mask_files"):
        console.print(escape(scores["unknown_mask_summary"]), soft_wrap=True)
    write_json_atomic(target, scores)
    console.print(f"wrote {escape(str(target))}")


def register(app: typer.Typer) -> None:
    """Add ``lale train`` and ``lale evaluate`` to ``app``."""
    add_command(app, "train", train_command, epilog=TRAIN_EPILOG)
    add_command(app, "evaluate", evaluate_command)
