"""``lale federate``: a thin command over :mod:`lale.federated`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from lale.cli._common import add_command, fail, progress_bar, say_on, stdout
from lale.cli.training import _model_args, _quiet_lightning

StrategyOption = Literal["fedavg", "fedprox", "fedadam"]
SplitOption = Literal["region", "tile", "random"]

# Plain text: rich markup is off, so brackets print as written.
FEDERATE_EPILOG = (
    "Sites: --sites A B C (one lale dataset each: folder or shard set), or --data DATA "
    "--split-by region|tile|random --num-sites K (region: spatial blocks as lale prepare makes "
    "them, from TILE_rROW_cCOL names or GeoTIFF georeference; tile: whole tiles; random: IID). "
    "Every round is checkpointed: a killed federation continues with --resume RUN. "
    "A real deployment: lale federate --write-app APP --num-sites K [options] writes the Flower "
    "App; then flower-superlink on the server, flower-supernode --node-config "
    "\"data-dir='SITE'\" at each site, and flwr run APP SUPERLINK (docs/federated.md)."
)


def federate_command(
    sites: Annotated[
        list[Path] | None,
        typer.Option(help="One dataset per site (repeat, or list them after it) [--data]."),
    ] = None,
    more_sites: Annotated[
        list[Path] | None, typer.Argument(help="More sites (after --sites A).", show_default=False)
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="One dataset to cut into sites with --split-by [--sites].")
    ] = None,
    split_by: Annotated[
        SplitOption | None,
        typer.Option(help="Cut --data into sites: region, tile or random [--sites]."),
    ] = None,
    num_sites: Annotated[
        int, typer.Option(min=2, help="Sites to cut --data into (and SuperNodes of --write-app).")
    ] = 3,
    block: Annotated[
        int, typer.Option(min=1, help="--split-by region: block side in patches.")
    ] = 4,
    out: Annotated[
        Path | None, typer.Option(help="Run directory to create [required unless --resume].")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue this federation after its last round [a new one].")
    ] = None,
    model: Annotated[str, typer.Option(help="Registered model name (lale models).")] = "lale_s1",
    model_arg: Annotated[
        list[str] | None, typer.Option(help="Model option key=value (repeatable) [none].")
    ] = None,
    rounds: Annotated[int | None, typer.Option(min=1, help="Federated rounds [10].")] = None,
    local_steps: Annotated[
        int | None, typer.Option(min=1, help="Optimiser steps per site and round [10].")
    ] = None,
    local_epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Epochs per site and round, instead of steps [--local-steps]."),
    ] = None,
    strategy: Annotated[
        StrategyOption,
        typer.Option(help="fedavg, fedprox (proximal term in the site loss) or fedadam."),
    ] = "fedavg",
    mu: Annotated[float, typer.Option(min=0.0, help="FedProx proximal weight.")] = 0.01,
    server_lr: Annotated[float, typer.Option(min=0.0, help="FedAdam server learning rate.")] = 0.01,
    fedbn: Annotated[
        bool,
        typer.Option("--fedbn", help="Keep BatchNorm layers local to each site (FedBN)."),
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per local step.")] = 24,
    lr: Annotated[float, typer.Option(min=0.0, help="Local AdamW learning rate.")] = 1e-3,
    loss: Annotated[Literal["dice", "ce", "dice+ce"], typer.Option(help="Loss.")] = "dice",
    crop_size: Annotated[int, typer.Option(min=32, help="Training crop side.")] = 256,
    seed: Annotated[int, typer.Option(min=0, help="Federation seed.")] = 0,
    schema: Annotated[
        str | None,
        typer.Option(help="Class schema: aras400k, worldcover or a file [the sites' schema.json]."),
    ] = None,
    round_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for a round's replies.")
    ] = 3600.0,
    min_sites: Annotated[
        int, typer.Option(min=1, help="Fewest sites a round may aggregate before stopping.")
    ] = 1,
    accelerator: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    precision: Annotated[
        str | None, typer.Option(help="Lightning precision [bf16-mixed on GPU, else 32-true].")
    ] = None,
    max_unknown: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Largest share of unknown mask pixels per split."),
    ] = 0.5,
    strict: Annotated[
        bool, typer.Option("--strict", help="Unknown mask colours are errors.")
    ] = False,
    compare_centralized: Annotated[
        bool,
        typer.Option(
            "--compare-centralized",
            help="Also train the model on the union of the sites for the same total steps "
            "(RUN/centralized) and record both.",
        ),
    ] = False,
    write_app: Annotated[
        Path | None,
        typer.Option(
            help="Write a Flower App for a real deployment here instead of running [run here]."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train one model across sites that keep their data (Flower), simulated on this machine."""
    from lale.federated.options import FederateOptions
    from lale.federated.run import SiteSource, federate
    from lale.federated.run import resume as resume_federation
    from lale.recipe import Recipe

    _quiet_lightning()
    console = stdout()
    say = say_on(console)
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task("federation", total=None)

        def tick(done: int, what: str) -> None:
            bar.update(task, completed=done, description=escape(what))

        def tell(message: str) -> None:
            bar.console.print(escape(message), soft_wrap=True)

        if resume is not None:
            bar.update(task, total=rounds)
            result = resume_federation(resume, rounds, say=tell, tick=tick)
        else:
            if out is None and write_app is None:
                raise fail("give --out (or --resume RUN, or --write-app DIR)")
            if local_steps is not None and local_epochs is not None:
                raise fail("give --local-steps or --local-epochs, not both")
            recipe = Recipe(lr=lr, batch_size=batch_size, loss=loss, crop_size=crop_size)
            options = FederateOptions(
                out=out or Path("federation"),
                model=model,
                model_kwargs=_model_args(model_arg),
                schema=schema,
                recipe=recipe,
                rounds=rounds or 10,
                local_steps=None if local_epochs is not None else (local_steps or 10),
                local_epochs=local_epochs,
                strategy=strategy,
                mu=mu,
                server_lr=server_lr,
                fedbn=fedbn,
                seed=seed,
                round_timeout=round_timeout,
                min_sites=min_sites,
                accelerator=accelerator,
                precision=precision,
                max_unknown=max_unknown,
                strict=strict,
            )
            if write_app is not None:
                from lale.federated.deploy import write_app as write_flower_app

                path = write_flower_app(write_app, options, num_sites)
                say(f"wrote {path}: run it with flwr run {write_app} SUPERLINK")
                return
            bar.update(task, total=options.rounds)
            source = SiteSource(
                tuple([*(sites or []), *(more_sites or [])]), data, split_by, num_sites, block
            )
            result = federate(options, source, compare_centralized, say=tell, tick=tick)
    _summary(console, result.record, result.run_dir)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _summary(console: object, record: dict, run_dir: Path) -> None:
    from rich.console import Console

    assert isinstance(console, Console)
    console.print(
        f"best pooled val macro-F1 {_pct(record['best_val_macro_f1'])} at round "
        f"{record['best_round']}; test macro-F1 {_pct(record['test_macro_f1'])} "
        f"(sites: {', '.join(f'{k} {_pct(v)}' for k, v in (record['test_sites'] or {}).items())})"
    )
    console.print(
        f"{record['model_mb']:.2f} MB model; {record['mb_per_round_per_site']:.2f} MB per round "
        f"per site (down + up); {record['mb_total']:.1f} MB in all; {record['wall_seconds']:.0f} s"
    )
    learned = record.get("learned")
    if learned is not None and not learned["federated"]:
        console.print(
            f"barely learned at this budget: test macro-F1 under {_pct(learned['bar'])} "
            "(twice the majority-class F1); more rounds or local steps before comparing"
        )
    central = record.get("centralized")
    if central:
        gap = central["federated_minus_centralized_val"]
        console.print(
            f"centralized ({central['steps']} steps on the union): "
            f"val {_pct(central['best_val_macro_f1'])}, test {_pct(central['test_macro_f1'])}; "
            "federated − centralized val "
            f"{'—' if gap is None else f'{gap * 100:+.2f} points'}"
        )
    console.print(f"run directory: {escape(str(run_dir))} (federation.json, federation.png)")


def register(app: typer.Typer) -> None:
    """Add ``lale federate`` to ``app``."""
    add_command(app, "federate", federate_command, epilog=FEDERATE_EPILOG)
