"""``lale federate``: sites in, a federated run directory out (simulated on this machine).

:func:`federate` checks everything it can before Flower starts (every site exists, is a lale
dataset, shares the class schema and has readable, labelled data; each failure one line naming
the site), records the sites in ``RUN/federation/sites.json``, runs the federation in Flower's
simulation engine and, with ``compare_centralized``, trains the same model on the union of
the sites for the same total number of steps (``RUN/centralized``) and records both.
:func:`resume` continues a killed federation from its last finished round.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lale.atomic import write_json_atomic
from lale.data.schema import ClassSchema, save_schema
from lale.data.shards import is_shards
from lale.errors import DataError, RunError, UsageError
from lale.federated.local import check_site
from lale.federated.options import FederateOptions
from lale.federated.record import FEDERATION_FIGURE, FEDERATION_JSON, mb_to_reach, plot_federation
from lale.federated.rounds import FederationResult, Tick
from lale.federated.sites import Site, SplitKind, check_schemas, given_sites, split_into_sites
from lale.federated.state import FEDERATION_DIR, options_path
from lale.output_paths import check_output_dir
from lale.training.rundir import claim_new

__all__ = ["SiteSource", "federate", "resume"]

Say = Callable[[str], None]
_SITES = "sites.json"


@dataclass(frozen=True)
class SiteSource:
    """Where the sites come from: ``sites`` (one dataset each), or ``data`` cut ``split_by``."""

    sites: tuple[Path, ...] = ()
    data: Path | None = None
    split_by: SplitKind | None = None
    count: int = 3
    block: int = 4


def _sites(source: SiteSource, out: Path, seed: int, say: Say) -> list[Site]:
    if source.sites and source.split_by:
        raise UsageError("give --sites or --split-by with --data, not both")
    if source.sites:
        return given_sites(source.sites)
    if source.split_by is None or source.data is None:
        raise UsageError("give the sites: --sites A B ..., or --data DATA --split-by KIND")
    if not source.data.is_dir():
        raise DataError(source.data, "no such dataset folder")
    return split_into_sites(
        source.data, source.split_by, source.count, out / "sites", seed, source.block, say
    )


def _check_sites(sites: Sequence[Site], options: FederateOptions) -> None:
    spec = options.client_spec(options.schema if isinstance(options.schema, dict) else {})
    for site in sites:
        try:
            check_site(site.root, spec)
        except DataError as err:
            raise DataError(err.path, f"site {site.name}: {err.problem}") from None


def federate(
    options: FederateOptions,
    source: SiteSource,
    compare_centralized: bool = False,
    say: Say = print,
    tick: Tick = lambda done, what: None,
) -> FederationResult:
    """Run a new federation into ``options.out`` (see the module docstring).

    Raises:
        UsageError: Sites given both ways or not at all, or too few.
        DataError: A site is missing, unreadable or labelled with another schema (names it).
        WorkFailedError: ``options.out`` already holds a run or a federation.
        FederationError: The federation could not finish (its state kept for :func:`resume`).
    """
    out = options.out
    check_output_dir(out, create=False)
    if options_path(out).exists():
        raise UsageError(f"{out} holds a federation; continue it with lale federate --resume {out}")
    claim_new(out, clear=False)
    sites = _sites(source, out, options.seed, say)
    if compare_centralized and source.data is None and any(is_shards(s.root) for s in sites):
        raise UsageError("--compare-centralized joins folder datasets; a site is a shard set")
    schema = check_schemas(sites, options.schema if not isinstance(options.schema, dict) else None)
    options = replace(options, schema=schema.to_dict())
    _check_sites(sites, options)
    record = {
        "sites": [{"name": s.name, "root": str(s.root)} for s in sites],
        "compare_centralized": compare_centralized,
        "union": None if source.data is None else str(source.data),
    }
    write_json_atomic(out / FEDERATION_DIR / _SITES, record)
    return _run(options, sites, record, say, tick)


def resume(
    out: Path, rounds: int | None = None, say: Say = print, tick: Tick = lambda d, w: None
) -> FederationResult:
    """Continue the federation in ``out`` after its last finished round (``rounds``: a new total).

    Raises:
        RunError: ``out`` holds no federation, or its records are unreadable.
    """
    try:
        options = FederateOptions.from_dict(json.loads(options_path(out).read_text()))
        record = json.loads((out / FEDERATION_DIR / _SITES).read_text())
        sites = [Site(s["name"], Path(s["root"])) for s in record["sites"]]
    except FileNotFoundError as err:
        raise RunError(
            out, f"no federation to resume here ({Path(str(err.filename)).name} missing)"
        ) from None
    except (ValueError, KeyError, TypeError) as err:
        raise RunError(options_path(out), f"unreadable federation record: {err}") from None
    options = replace(options, out=out, rounds=rounds or options.rounds)
    return _run(options, sites, record, say, tick)


def _run(
    options: FederateOptions, sites: list[Site], record: dict[str, Any], say: Say, tick: Tick
) -> FederationResult:
    from lale.federated.simulate import simulate

    result = simulate(options, sites, say, tick)
    if record.get("compare_centralized"):
        central = centralized(options, sites, record.get("union"), result, say)
        result.record["centralized"] = central
        write_json_atomic(options.out / FEDERATION_JSON, result.record)
        title = f"{options.model} · {options.strategy} · {len(sites)} sites vs centralized"
        plot_federation(
            result.record["per_round"],
            options.out / FEDERATION_FIGURE,
            title,
            centralized=central["best_val_macro_f1"],
        )
    return result


def _union(sites: Sequence[Site], folder: Path) -> Path:
    """One dataset of links to every site's files (names prefixed by the site)."""
    from lale.data.io.layout import scan_folder
    from lale.data.prepare.splits import SPLITS

    for site in sites:
        for split in SPLITS:
            for pair in scan_folder(site.root, split):
                for kind, path in (("images", pair.image), ("masks", pair.mask)):
                    link = folder / split / kind / f"{site.name}__{path.name}"
                    link.parent.mkdir(parents=True, exist_ok=True)
                    if not link.exists():
                        link.symlink_to(Path(str(path)).resolve())
    return folder


def centralized(
    options: FederateOptions,
    sites: Sequence[Site],
    union: str | None,
    result: FederationResult,
    say: Say,
) -> dict[str, Any]:
    """Train the same model on the union of the sites for the federation's total steps."""
    from lale.training.run import TrainOptions, train

    steps = sum(
        int(s.get("steps", 0)) for r in result.record["per_round"] for s in r["sites"].values()
    )
    out = options.out / "centralized"
    data = Path(union) if union else _union(sites, options.out / FEDERATION_DIR / "union")
    schema = ClassSchema.from_dict(options.schema if isinstance(options.schema, dict) else {})
    schema_file = options.out / FEDERATION_DIR / "schema.json"
    save_schema(schema, schema_file)
    say(f"centralized: {options.model} on the union of the sites, {steps} steps")
    recipe = replace(options.recipe, epochs=10**6, early_stopping=0)
    trained = train(
        TrainOptions(
            data=data,
            out=out,
            model=options.model,
            model_kwargs=options.model_kwargs,
            schema=schema_file,
            recipe=recipe,
            seed=options.seed,
            accelerator=options.accelerator,
            precision=options.precision,
            progress=False,
            max_steps=steps,
            max_unknown=options.max_unknown,
            strict=options.strict,
        ),
        say=lambda message: None,
    )
    best = trained.best_score
    test = trained.test_scores["macro"]["f1"] if trained.test_scores else None
    fed = result.record.get("best_val_macro_f1")
    bar = (result.record.get("learned") or {}).get("bar")
    return {
        "run_dir": str(out),
        "steps": steps,
        "best_val_macro_f1": best,
        "test_macro_f1": test,
        "learned": None if bar is None or test is None else test >= bar,
        "federated_mb_to_reach_centralized_val": None
        if best is None
        else mb_to_reach(result.record["per_round"], best),
        "federated_minus_centralized_val": None if best is None or fed is None else fed - best,
    }
