"""``lale pretrain`` and ``lale hub push``: thin commands over :mod:`lale.training.pretrain`
and :mod:`lale.hub`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lale.cli._common import add_command, fail, guarded, say_on, stdout
from lale.cli.training import (
    Accelerator,
    CheckpointEvery,
    Devices,
    NumNodes,
    Precision,
    Strategy,
    Workers,
)


def pretrain_command(
    data: Annotated[
        Path | None,
        typer.Option(
            help="ImageFolder root: train/CLASS/IMAGE and val/CLASS/IMAGE (the ImageNet-1k "
            "layout) [required unless --resume]."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="New run directory [required unless --resume].")
    ] = None,
    model: Annotated[str, typer.Option(help="LALE variant (lale_s1, lale_s2, lale_t, ...).")] = (
        "lale_s1"
    ),
    resume: Annotated[
        Path | None, typer.Option(help="Continue this pretraining run where it stopped [none].")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per step and device.")] = 64,
    lr: Annotated[float, typer.Option(min=0.0, help="AdamW peak learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(min=0.0, help="AdamW weight decay.")] = 0.05,
    warmup_epochs: Annotated[int, typer.Option(min=0, help="Linear warm-up epochs.")] = 2,
    img_size: Annotated[int, typer.Option(min=32, help="Side of the training crops.")] = 224,
    auto_augment: Annotated[
        str,
        typer.Option(
            help="timm RandAugment policy ('none' for none; with inc1, magnitudes are capped "
            "at 9 because Pillow refuses posterize to 0 bits).",
        ),
    ] = "rand-m9-mstd0.5-inc1",
    reprob: Annotated[float, typer.Option(min=0.0, max=1.0, help="Random erasing.")] = 0.25,
    mixup: Annotated[float, typer.Option(min=0.0, help="Mixup alpha (0: off).")] = 0.8,
    cutmix: Annotated[float, typer.Option(min=0.0, help="CutMix alpha (0: off).")] = 1.0,
    smoothing: Annotated[float, typer.Option(min=0.0, max=1.0, help="Label smoothing.")] = 0.1,
    drop_path: Annotated[float, typer.Option(min=0.0, max=1.0, help="Stochastic depth.")] = 0.1,
    in_chans: Annotated[int, typer.Option(min=1, help="Input bands.")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="Run seed.")] = 0,
    precision: Precision = None,
    accelerator: Accelerator = "auto",
    devices: Devices = "1",
    num_nodes: NumNodes = 1,
    strategy: Strategy = "auto",
    workers: Workers = 0,
    checkpoint_every: CheckpointEvery = 50,
    max_steps: Annotated[int, typer.Option(help="Stop after N steps (-1: no limit).")] = -1,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Pretrain a LALE encoder as an image classifier with timm's recipe (RandAugment,
    Mixup/CutMix, AdamW, cosine warm-up) on Lightning. The run directory holds timm's config.json,
    model.safetensors, encoder.safetensors and val top-1/top-5; start segmentation from it
    with lale train --init RUN."""
    from lale.cli.training import _quiet_lightning, hardware_options
    from lale.training.pretrain import (
        PretrainOptions,
        PretrainRecipe,
        pretrain,
        resume_pretrain,
    )
    from lale.training.pretrain_data import AugmentSpec

    _quiet_lightning()
    console = stdout()
    hardware = hardware_options(
        workers,
        accelerator,
        devices,
        num_nodes,
        strategy,
        precision=precision,
        progress=progress,
        max_steps=max_steps,
    )
    if resume is not None:
        result = resume_pretrain(resume, say=say_on(console), **hardware)
    else:
        if data is None or out is None:
            raise fail("give --data and --out (or --resume RUN_DIR)")
        from lale.models.timm_lale import TIMM_VARIANTS

        if model not in TIMM_VARIANTS:
            raise fail(f"--model {model!r}: pretraining takes {', '.join(TIMM_VARIANTS)}")
        recipe = PretrainRecipe(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            warmup_epochs=warmup_epochs,
            mixup=mixup,
            cutmix=cutmix,
            smoothing=smoothing,
            drop_path_rate=drop_path,
        )
        augment = AugmentSpec(
            img_size=img_size,
            auto_augment=None if auto_augment.lower() == "none" else auto_augment,
            reprob=reprob,
        )
        options = PretrainOptions(
            data=data,
            out=out,
            model=model,
            in_chans=in_chans,
            recipe=recipe,
            augment=augment,
            seed=seed,
            checkpoint_every=checkpoint_every,
            **hardware,
        )
        result = pretrain(options, say=say_on(console))
    console.print_json(json.dumps(result))


def hub_push_command(
    run: Annotated[Path, typer.Argument(help="A lale train or lale pretrain run directory.")],
    repo_id: Annotated[str, typer.Argument(help="Hugging Face repository, ORG/NAME.")],
    local_dir: Annotated[
        Path | None,
        typer.Option(
            help="Write the repository files (model card, config, weights) into this new "
            "folder and upload nothing [upload to the Hub]."
        ),
    ] = None,
    license_id: Annotated[
        str, typer.Option("--license", help="License of the weights, for the model card.")
    ] = "apache-2.0",
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")] = (
        False
    ),
) -> None:
    """Publish a run on the Hugging Face Hub: a model card (classes, bands, scaling, metrics,
    license), config.json and model.safetensors. Load it again with lale train --init
    hf-hub:ORG/NAME or lale.create_model(NAME, pretrained="hf-hub:ORG/NAME")."""
    from lale.hub import push, stage

    console = stdout()
    if local_dir is not None:
        stage(run, repo_id, local_dir, license_id=license_id)
        console.print(f"wrote {local_dir} (nothing uploaded)", soft_wrap=True)
        return
    url = push(run, repo_id, license_id=license_id, private=private)
    console.print(f"pushed {run} to {url}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``lale pretrain`` and ``lale hub push`` to ``app``."""
    add_command(app, "pretrain", pretrain_command)
    hub = typer.Typer(
        help="Hugging Face Hub: publish runs.", no_args_is_help=True, rich_markup_mode=None
    )
    hub.command("push")(guarded(hub_push_command, "lale hub push"))
    app.add_typer(hub, name="hub")
