"""One federation from its first (or resumed) round to its run directory: the ServerApp's work.

The run directory is an ordinary one: ``config.json`` and ``model.safetensors`` (the global
model of the round that scored best on the pooled val split), ``test_metrics.json`` and its
figures, plus ``federation.json``, ``federation.png`` and ``federation/`` (the state to resume).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from flwr.app import ConfigRecord
from flwr.serverapp import Grid

from lale.atomic import write_json_atomic
from lale.data.schema import ClassSchema
from lale.federated.client import SPEC_KEY
from lale.federated.local import build_task, load_state, shared_state
from lale.federated.options import FederateOptions
from lale.federated.record import (
    FEDERATION_FIGURE,
    FEDERATION_JSON,
    MB,
    plot_federation,
    pooled,
    traffic_mb,
)
from lale.federated.server import (
    FederationError,
    SiteInfo,
    _reason,
    build_strategy,
    checkpoint,
    evaluate_messages,
    exchange,
    from_record,
    known,
    query_sites,
    restore_strategy,
    to_record,
    wait_for_sites,
)
from lale.federated.state import ServerState, options_path
from lale.federated.state import load_state as load_server_state
from lale.run_config import RunConfig, save_config
from lale.run_layout import CONFIG, FIGURES, TEST_METRICS, WEIGHTS
from lale.training.figures import plot_confusion, plot_per_class
from lale.training.rundir import RunLock
from lale.weights import save_weights

__all__ = ["FederationResult", "Tick", "run_federation"]

Say = Callable[[str], None]
Tick = Callable[[int, str], None]
"""Progress: ``tick(rounds_done, what is happening)``."""


@dataclass(frozen=True)
class FederationResult:
    """What a finished federation produced."""

    run_dir: Any
    rounds: int
    best_round: int | None
    best_f1: float | None
    test_macro_f1: float | None
    record: dict[str, Any]


def _site_scores(infos: dict[int, SiteInfo], replies: Any, names: list[str]) -> dict[str, Any]:
    out = {}
    for node, reply in replies.items():
        if node not in infos:
            continue
        flat = list(cast(list[int], reply.content.metric_records["metrics"]["confusion"]))
        out[infos[node].name] = (flat, pooled([flat], names)["macro"]["f1"])
    return out


def run_federation(
    grid: Grid,
    options: FederateOptions,
    expected_sites: int,
    say: Say = print,
    tick: Tick = lambda done, what: None,
) -> FederationResult:
    """Run (or resume) the federation ``options`` describes on ``grid``'s sites.

    Raises:
        FederationError: A site failed its checks, too few sites answered a round, or every
            site failed.
        RunBusyError: Another process runs this federation.
    """
    out = options.out
    schema = _schema(options)
    spec = options.client_spec(schema.to_dict())
    with RunLock(out):
        write_json_atomic(options_path(out), options.to_dict())
        nodes = wait_for_sites(grid, expected_sites, options.round_timeout, say)
        infos = {
            i.node: i
            for i in query_sites(
                grid, nodes, spec, options.round_timeout, lambda what: tick(0, what)
            )
        }
        sites_line = ", ".join(
            f"{i.name} ({i.images['train']} train / {i.images['val']} val)" for i in infos.values()
        )
        say(f"{len(infos)} sites: {sites_line}")
        task = build_task(spec, options.seed)
        state = load_server_state(out)
        if state is None:
            torch.manual_seed(options.seed)
            arrays = {k: v.numpy() for k, v in shared_state(task.net).items()}
            state = ServerState(round=0, arrays=arrays)
            scaling = next(iter(infos.values())).scaling or "truecolor"
            config = RunConfig.from_schema(
                options.model,
                schema,
                model_overrides=options.model_kwargs,
                input_size=(options.recipe.crop_size, options.recipe.crop_size),
                recipe=options.recipe,
                seed=options.seed,
                scaling=scaling,
            )
            save_config(out / CONFIG, config)
        elif state.round:
            say(f"resuming after round {state.round} of {options.rounds}")
        strategy = build_strategy(options, len(infos))
        restore_strategy(strategy, state.strategy)
        names = list(schema.names)
        for server_round in range(state.round + 1, options.rounds + 1):
            started = time.monotonic()
            record = _round(
                grid,
                strategy,
                state,
                infos,
                spec,
                options,
                server_round,
                names,
                _round_tick(tick, server_round),
            )
            record["wall_seconds"] = round(time.monotonic() - started, 3)
            state.records.append(record)
            state.round = server_round
            state.wall_seconds += record["wall_seconds"]
            f1 = record["global_val_macro_f1"]
            if f1 is not None and (state.best_f1 is None or f1 > state.best_f1):
                state.best_f1, state.best_round = f1, server_round
                load_state(
                    task.net,
                    {k: torch.from_numpy(np.asarray(v)) for k, v in state.arrays.items()},
                    {},
                )
                save_weights(task.net, out / WEIGHTS)
            checkpoint(out, state, strategy)
            say(_round_line(record, options.rounds))
            tick(server_round, f"round {server_round} done")
        return _finish(grid, strategy, state, infos, spec, options, names, say)


def _round_tick(tick: Tick, server_round: int) -> Callable[[str], None]:
    def round_tick(what: str) -> None:
        tick(server_round - 1, f"round {server_round}: {what}")

    return round_tick


def _schema(options: FederateOptions) -> ClassSchema:
    from lale.data.schema import load_schema

    if isinstance(options.schema, dict):
        return ClassSchema.from_dict(options.schema)
    return load_schema(options.schema or "aras400k")


def _round(
    grid: Grid,
    strategy: Any,
    state: ServerState,
    infos: dict[int, SiteInfo],
    spec: Any,
    options: FederateOptions,
    server_round: int,
    names: list[str],
    tick: Callable[[str], None],
) -> dict[str, Any]:
    arrays = to_record(state.arrays)
    config = ConfigRecord({SPEC_KEY: spec.to_json()})
    messages = known(strategy.configure_train(server_round, arrays, config, grid), infos)
    trained = exchange(grid, messages, options.round_timeout, tick, "training")
    left_out = {
        infos[n].name if n in infos else str(n): _reason(r) for n, r in trained.failed.items()
    }
    if len(trained.replies) < max(1, options.min_sites):
        raise FederationError(
            f"round {server_round}: {len(trained.replies)} of {len(trained.sent_bytes)} sites "
            f"answered (fewer than --min-sites {options.min_sites}); "
            + "; ".join(f"{k}: {v}" for k, v in left_out.items())
            + f"; resume with: lale federate --resume {options.out}"
        )
    aggregated, _ = strategy.aggregate_train(server_round, list(trained.replies.values()))
    if aggregated is not None:  # in the global model's dtypes (FedAdam's arithmetic is float64)
        before = state.arrays
        state.arrays = {k: v.astype(before[k].dtype) for k, v in from_record(aggregated).items()}
    arrays = to_record(state.arrays)
    asked = known(evaluate_messages(strategy, server_round, arrays, spec, "val", grid), infos)
    scored = exchange(grid, asked, options.round_timeout, tick, "scoring")
    for node, reason in scored.failed.items():
        left_out.setdefault(infos[node].name if node in infos else str(node), _reason(reason))
    per_site = _site_scores(infos, scored.replies, names)
    sites: dict[str, Any] = {}
    for node, info in infos.items():
        row: dict[str, Any] = {"bytes_down": trained.sent_bytes.get(node, 0), "bytes_up": 0}
        if node in trained.replies:
            reply = trained.replies[node].content
            metrics = reply.metric_records["metrics"]
            row["bytes_up"] = sum(a.count_bytes() for a in reply.array_records.values())
            row.update(
                train_loss=float(cast(float, metrics["train-loss"])),
                steps=int(cast(int, metrics["steps"])),
                examples=int(cast(int, metrics["num-examples"])),
                seconds=float(cast(float, metrics["seconds"])),
            )
        row["eval_bytes_down"] = scored.sent_bytes.get(node, 0)
        if info.name in per_site:
            row["val_macro_f1"] = per_site[info.name][1]
        sites[info.name] = row
    glob = pooled([c for c, _ in per_site.values()], names)["macro"]["f1"] if per_site else None
    return {
        "round": server_round,
        "global_val_macro_f1": glob,
        "sites": sites,
        "left_out": left_out,
    }


def _round_line(record: dict[str, Any], rounds: int) -> str:
    f1 = record["global_val_macro_f1"]
    shown = "—" if f1 is None else f"{f1:.2%}"
    line = (
        f"round {record['round']}/{rounds}: pooled val macro-F1 {shown}, "
        f"{traffic_mb(record):.1f} MB sent, {record['wall_seconds']:.1f} s"
    )
    if record["left_out"]:
        gone = "; ".join(f"{k} ({v})" for k, v in record["left_out"].items())
        line += f"; aggregated without {gone}"
    return line


def _finish(
    grid: Grid,
    strategy: Any,
    state: ServerState,
    infos: dict[int, SiteInfo],
    spec: Any,
    options: FederateOptions,
    names: list[str],
    say: Say,
) -> FederationResult:
    out = options.out
    if state.best_round is None:
        raise FederationError("no round gave a val score, so no model.safetensors was written")
    from safetensors.numpy import load_file

    best = load_file(out / WEIGHTS)
    asked = evaluate_messages(strategy, options.rounds, to_record(best), spec, "test", grid)
    scored = exchange(grid, known(asked, infos), options.round_timeout, lambda what: None, "test")
    per_site = _site_scores(infos, scored.replies, names)
    test = pooled([c for c, _ in per_site.values()], names) if per_site else None
    if test is not None:
        test["sites"] = {name: f1 for name, (_, f1) in per_site.items()}
        test["sites_left_out"] = {infos[n].name: _reason(r) for n, r in scored.failed.items()}
        write_json_atomic(out / TEST_METRICS, test)
        plot_confusion(test, out / FIGURES["confusion"])
        plot_per_class(test, out / FIGURES["per_class"])
    record = federation_record(options, infos, state, test)
    write_json_atomic(out / FEDERATION_JSON, record)
    plot_federation(
        state.records,
        out / FEDERATION_FIGURE,
        f"{options.model} · {options.strategy}{' + FedBN' if options.fedbn else ''} · "
        f"{len(infos)} sites",
    )
    test_f1 = None if test is None else test["macro"]["f1"]
    return FederationResult(out, state.round, state.best_round, state.best_f1, test_f1, record)


def federation_record(
    options: FederateOptions,
    infos: dict[int, SiteInfo],
    state: ServerState,
    test: dict[str, Any] | None,
) -> dict[str, Any]:
    """``federation.json``: the setup, every round, the best round and its test scores."""
    model_bytes = sum(np.asarray(v).nbytes for v in state.arrays.values())
    per_round = [traffic_mb(r) / max(1, len(r["sites"])) for r in state.records]
    return {
        "model": options.model,
        "strategy": options.strategy,
        "mu": options.mu if options.strategy == "fedprox" else None,
        "server_lr": options.server_lr if options.strategy == "fedadam" else None,
        "fedbn": options.fedbn,
        "rounds": options.rounds,
        "local_steps": options.local_steps,
        "local_epochs": options.local_epochs,
        "seed": options.seed,
        "recipe": options.recipe.to_dict(),
        "sites": {i.name: i.images for i in infos.values()},
        "model_mb": round(model_bytes / MB, 3),
        "mb_per_round_per_site": round(float(np.mean(per_round)), 3) if per_round else None,
        "mb_total": round(sum(traffic_mb(r) for r in state.records), 3),
        "wall_seconds": round(state.wall_seconds, 3),
        "best_round": state.best_round,
        "best_val_macro_f1": state.best_f1,
        "test_macro_f1": None if test is None else test["macro"]["f1"],
        "test_sites": None if test is None else test["sites"],
        "learned": learned_record(test),
        "per_round": state.records,
    }


def learned_record(test: dict[str, Any] | None) -> dict[str, Any] | None:
    """Whether the test macro-F1 reaches the benchmark's bar: twice the majority-class F1."""
    from lale.benchmark.claims import LEARN_FACTOR
    from lale.benchmark.statistics import majority_f1

    if test is None or test["macro"]["f1"] is None:
        return None
    majority = majority_f1([c["support"] for c in test["per_class"].values()])
    return {
        "majority_f1": majority,
        "bar": LEARN_FACTOR * majority,
        "federated": test["macro"]["f1"] >= LEARN_FACTOR * majority,
        "rule": f"test macro-F1 >= {LEARN_FACTOR:g} x the majority-class F1 (as lale benchmark)",
    }
