"""``lale benchmark``: a thin command over :mod:`lale.benchmark`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.markup import escape

from lale.cli._common import add_command, fail, say_on, stderr, stdout

AblationOption = Literal["attention", "kernel", "norm-act", "decoder", "pretraining"]
PresetOption = Literal["quick", "frontier", "paper"]
BnStatsChoice = Literal["running", "recompute", "both"]
TuneOption = Literal["lr"]
TestOption = Literal["paired", "welch"]


def benchmark_command(
    out: Annotated[Path, typer.Option(help="Output folder (runs, results, report, figures).")],
    data: Annotated[
        Path | None,
        typer.Option(help="Dataset root [the preset's synthetic data in OUT/data]."),
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated model names [the preset's].")
    ] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeds 0..K-1 [3].")] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Budget: epochs per run [the preset's budget].")
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(min=1, help="Budget: optimizer steps per run [the preset's budget]."),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(min=0.01, help="Budget: wall-clock minutes per run [the preset's budget]."),
    ] = None,
    ablation: Annotated[
        AblationOption | None,
        typer.Option(help="Variants of one LALE model (the first of --models) instead [none]."),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="--ablation pretraining: the weights of the PT variant, a lale pretrain run or "
            "hf-hub:ORG/NAME (the scratch variant starts from random weights) [none]."
        ),
    ] = None,
    preset: Annotated[
        PresetOption | None,
        typer.Option(
            help="quick (embedded data, CPU), frontier (LALE against the light models, CPU) "
            "or paper (ARAS400k, GPU) [none: give --models, --data and a budget]."
        ),
    ] = None,
    lale: Annotated[
        str | None, typer.Option(help="The LALE model the claims are about [the first].")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Samples per step [the preset's, else 24].")
    ] = None,
    crop_size: Annotated[
        int | None, typer.Option(min=32, help="Training crop side [the preset's, else 256].")
    ] = None,
    samples_per_epoch: Annotated[
        int | None, typer.Option(min=1, help="Training crops per epoch [one per image].")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(min=0.0, help="AdamW learning rate [the preset's, else 0.001].")
    ] = None,
    model_arg: Annotated[
        list[str] | None,
        typer.Option(help="Option key=value given to every model (repeatable) [none]."),
    ] = None,
    curve: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Budget-curve points per run: val and test scored at 1/8, 1/4, 1/2 and all of "
            "the budget for 4 (each point twice the one before; 1: the end only) [4].",
        ),
    ] = None,
    bn_stats: Annotated[
        BnStatsChoice | None,
        typer.Option(
            help="Eval-mode BatchNorm statistics: recompute (re-estimated on fixed training "
            "crops before every validation and test), running, or both (a set of runs each, "
            "for models with BatchNorm) [recompute].",
        ),
    ] = None,
    tune: Annotated[
        TuneOption | None,
        typer.Option(
            help="lr: tune each model's learning rate on the validation split at a share of "
            "the budget; the report gives both one-recipe and tuned results [off: one recipe].",
        ),
    ] = None,
    lr_grid: Annotated[
        str | None,
        typer.Option(
            help="Learning rates for --tune lr, comma-separated [the recipe's × 1/3, 1, 3]."
        ),
    ] = None,
    tune_fraction: Annotated[
        float | None,
        typer.Option(min=0.01, max=1.0, help="Share of the budget each tuning run trains [0.5]."),
    ] = None,
    test: Annotated[
        TestOption,
        typer.Option(help="Test over seeds: paired (seeds share data order and crops) or welch."),
    ] = "paired",
    bootstrap: Annotated[
        int, typer.Option(min=100, help="Bootstrap resamples of the test images per gap.")
    ] = 1000,
    power_gap: Annotated[
        float, typer.Option(min=0.01, help="F1 gap (points) the power line reports seeds for.")
    ] = 2.0,
    skip_bad_pairs: Annotated[
        bool,
        typer.Option(
            "--skip-bad-pairs",
            help="Leave out image/mask pairs whose files fail their checks (listed in one "
            "warning and in each run's skipped_pairs.json) instead of stopping.",
        ),
    ] = False,
    profile_size: Annotated[int, typer.Option(min=32, help="Input side for GMACs/speed.")] = 256,
    profile_batch: Annotated[int, typer.Option(min=1, help="CPU throughput batch.")] = 8,
    workers: Annotated[int, typer.Option(min=0, help="Data-loader workers.")] = 0,
    accelerator: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    progress: Annotated[bool, typer.Option(help="Show the progress display.")] = True,
) -> None:
    """Train every model × seed on one recipe and budget, test, profile, compare, report."""
    from lale.benchmark import (
        PRESETS,
        BenchmarkPlan,
        Budget,
        Entry,
        Tuning,
        ablation_entries,
        claim_line,
        ensure_synthetic,
        parse_models,
        run_benchmark,
    )
    from lale.benchmark.presets import BN_CHOICES, ProtocolOptions
    from lale.cli.training import _model_args, _quiet_lightning
    from lale.models.registry import model_kwargs
    from lale.output_paths import check_output_dir
    from lale.recipe import Recipe

    check_output_dir(out, create=False)
    _quiet_lightning()
    grid = _lr_grid(lr_grid)
    console = stdout()
    chosen = PRESETS[preset] if preset else None
    budgets = [(k, v) for k, v in (("epochs", epochs), ("steps", steps), ("minutes", minutes)) if v]
    if len(budgets) > 1:
        raise fail("give one budget: --epochs, --steps or --minutes")
    if budgets:
        budget = Budget(budgets[0][0], float(budgets[0][1]))  # type: ignore[arg-type]
    elif chosen is not None:
        budget = chosen.budget
    else:
        raise fail("give a budget: --epochs, --steps or --minutes (or a --preset)")
    recipe = chosen.recipe if chosen else Recipe()
    if batch_size is not None:
        recipe = replace(recipe, batch_size=batch_size)
    if crop_size is not None:
        recipe = replace(recipe, crop_size=crop_size)
    if lr is not None:
        recipe = replace(recipe, lr=lr)
    if samples_per_epoch is not None:
        recipe = replace(recipe, samples_per_epoch=samples_per_epoch)
    names = models or (",".join(chosen.models) if chosen else None)
    if not names:
        raise fail("give --models (comma-separated) or a --preset")
    for entry in parse_models(names):
        model_kwargs(entry.model)  # an unknown name fails before data is generated
    if data is None:
        if chosen is None or chosen.synthetic is None:
            raise fail("give --data (only --preset quick and frontier generate their own data)")
        data = ensure_synthetic(out / "data", chosen.synthetic)
    shared = _model_args(model_arg)
    entries = tuple(Entry(e.label, e.model, dict(shared)) for e in parse_models(names))
    if ablation is not None:
        entries = ablation_entries(ablation, entries[0].model, shared, init)
        if init is not None:  # unreadable or mismatched weights fail before any training
            _check_init(init, entries[-1])
    elif init is not None:
        raise fail("--init applies to --ablation pretraining only")
    protocol = chosen.protocol if chosen else ProtocolOptions()
    bn_choice = bn_stats or protocol.bn_stats
    tuning = None
    if (tune or protocol.tune) and not ablation:
        tuning = Tuning(grid, tune_fraction or protocol.tune_fraction)
    elif tune and ablation:
        raise fail("--tune applies to model comparisons, not to --ablation")
    plan = BenchmarkPlan(
        data=data,
        out=out,
        entries=entries,
        seeds=tuple(range(seeds or (chosen.seeds if chosen else 3))),
        budget=budget,
        recipe=recipe,
        lale=lale,
        ablation=ablation,
        workers=workers,
        accelerator=accelerator,
        profile_size=profile_size,
        profile_batch=profile_batch,
        curve=curve or protocol.curve,
        bn_stats=BN_CHOICES[bn_choice],
        tuning=tuning,
        test=test,
        bootstrap=bootstrap,
        power_gap=power_gap / 100,
        skip_bad_pairs=skip_bad_pairs,
    )
    console.print(
        f"[bold]lale benchmark[/] — {len(entries)} models × {len(plan.seeds)} seeds, "
        f"{budget.describe()}, into {escape(str(out))}",
        soft_wrap=True,
    )
    results = run_benchmark(plan, progress=progress, console=stderr(), say=say_on(console))
    for row in results["models"]:
        f1 = row["macro_f1"]
        std = "" if f1["std"] is None else f" ± {f1['std']:.2%}"
        console.print(
            f"{escape(row['model'])}: macro-F1 {f1['mean']:.2%}{std}, {row['gmacs']:.2f} GMACs, "
            f"{row['throughput']:.1f} img/s",
            soft_wrap=True,
        )
    for claim in results["claims"]:
        console.print(f"[bold]{escape(claim_line(claim))}[/]", soft_wrap=True)
    for change in results["protocol_changes"]:
        console.print(f"verdict changes with the protocol: {escape(change)}", soft_wrap=True)
    for verdict in results["verdicts"]:
        console.print(f"[bold]{escape(verdict)}[/]", soft_wrap=True)
    console.print(f"report: {escape(str(out / 'report.md'))}")


def _lr_grid(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise fail(f"--lr-grid expects comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise fail(f"--lr-grid needs positive learning rates, got {text!r}")
    return values


def _check_init(init: str, entry: Any) -> None:
    """Fail now, in one line, if ``init`` is unreadable or fits none of ``entry``'s tensors."""
    from lale.models.registry import create_model
    from lale.models.transfer import load_matching, read_donor, resolve_source

    load_matching(create_model(entry.model, **entry.kwargs), read_donor(resolve_source(init)))


def register(app: typer.Typer) -> None:
    """Add ``lale benchmark`` to ``app``."""
    add_command(app, "benchmark", benchmark_command)
