"""The federation's server loop, on Flower's Grid and Flower's strategies.

Flower does the messaging (the Grid) and the aggregation (``FedAvg``, ``FedProx``, ``FedAdam``:
their ``configure_train`` and ``aggregate_train``); this loop adds what a lale run needs:
the sites' query and schema check before round 1, a checkpoint after every round (a killed
federation resumes at its last round), per-site bytes and scores, sites left out of a round
and why, progress, the best global model as ``model.safetensors`` and its test scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx

from lale.errors import WorkFailedError
from lale.federated.client import SPEC_KEY
from lale.federated.options import ClientSpec, FederateOptions
from lale.federated.state import ServerState, save_state

__all__ = ["Exchange", "FederationError", "SiteInfo", "build_strategy", "exchange", "query_sites"]

Say = Callable[[str], None]
Tick = Callable[[str], None]
POLL_SECONDS = 0.2


class FederationError(WorkFailedError):
    """The federation cannot go on: a site failed its checks, or too few sites answered."""


def build_strategy(options: FederateOptions, sites: int) -> FedAvg:
    """Flower's strategy for ``options.strategy``, sampling every connected site each round."""
    least = max(1, min(options.min_sites, sites))
    common: dict[str, Any] = {
        "fraction_train": 1.0,
        "fraction_evaluate": 1.0,
        "min_train_nodes": least,
        "min_evaluate_nodes": least,
        "min_available_nodes": least,
    }
    if options.strategy == "fedprox":
        return FedProx(proximal_mu=options.mu, **common)
    if options.strategy == "fedadam":
        return FedAdam(eta=options.server_lr, **common)
    return FedAvg(**common)


def strategy_state(strategy: FedAvg) -> dict[str, dict[str, np.ndarray]]:
    """The strategy's own arrays to checkpoint (FedAdam's first and second moments)."""
    out = {}
    for name in ("m_t", "v_t"):
        value = getattr(strategy, name, None)
        if value:
            out[name] = dict(value)
    return out


def restore_strategy(strategy: FedAvg, state: dict[str, dict[str, np.ndarray]]) -> None:
    for name, value in state.items():
        if hasattr(strategy, name):
            setattr(strategy, name, dict(value))


def to_record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def from_record(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in record.items()}


@dataclass
class Exchange:
    """The replies of one exchange: by node, the good ones and the failures with reasons."""

    replies: dict[int, Message] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    sent_bytes: dict[int, int] = field(default_factory=dict)


def exchange(
    grid: Grid, messages: Iterable[Message], timeout: float, tick: Tick, what: str
) -> Exchange:
    """Push ``messages``, pull replies as they come (``tick`` on each), until all or timeout.

    A node whose reply is an error, or that has not replied within ``timeout`` seconds, is in
    ``failed`` with the reason.
    """
    out = Exchange()
    by_id: dict[str, int] = {}
    messages = list(messages)
    for msg in messages:
        arrays = msg.content.array_records
        out.sent_bytes[msg.metadata.dst_node_id] = sum(a.count_bytes() for a in arrays.values())
    for msg_id, msg in zip(grid.push_messages(messages), messages, strict=True):
        by_id[msg_id] = msg.metadata.dst_node_id
    waiting, end = set(by_id), time.monotonic() + timeout
    while waiting and time.monotonic() < end:
        for reply in grid.pull_messages(list(waiting)):
            msg_id = reply.metadata.reply_to_message_id
            if msg_id not in waiting:
                continue
            waiting.discard(msg_id)
            node = by_id[msg_id]
            if reply.has_error():
                out.failed[node] = reply.error.reason or f"error code {reply.error.code}"
            else:
                out.replies[node] = reply
            tick(f"{what}: {len(by_id) - len(waiting)} of {len(by_id)} sites done")
        if waiting:
            time.sleep(POLL_SECONDS)
    for msg_id in waiting:
        out.failed[by_id[msg_id]] = f"no reply within {timeout:g} s"
    return out


@dataclass(frozen=True)
class SiteInfo:
    """A site as its node reported it."""

    node: int
    name: str
    images: dict[str, int]
    scaling: str


def _reason(text: str) -> str:
    """The last line of a client's error (Flower sends the traceback's text)."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"


def wait_for_sites(grid: Grid, expected: int, timeout: float, say: Say) -> list[int]:
    """Node ids once ``expected`` nodes are connected, or a one-line error after ``timeout``."""
    end, told = time.monotonic() + timeout, False
    while len(nodes := sorted(grid.get_node_ids())) < expected:
        if time.monotonic() > end:
            raise FederationError(
                f"{len(nodes)} of {expected} sites connected after {timeout:g} s; start one "
                "flower-supernode per site"
            )
        if not told:
            say(f"waiting for {expected} sites to connect ({len(nodes)} so far)")
            told = True
        time.sleep(POLL_SECONDS)
    return nodes


def query_sites(
    grid: Grid, nodes: Sequence[int], spec: ClientSpec, timeout: float, tick: Tick
) -> list[SiteInfo]:
    """Ask every node which site it holds; each checks its data against the spec.

    Raises:
        FederationError: A site failed its checks (its one-line reason, naming the site), or
            two nodes hold sites of one name.
    """
    config = ConfigRecord({SPEC_KEY: spec.to_json()})
    messages = [
        Message(RecordDict({"config": config}), dst_node_id=n, message_type=MessageType.QUERY)
        for n in nodes
    ]
    got = exchange(grid, messages, timeout, tick, "checking sites")
    if got.failed:
        node, reason = next(iter(sorted(got.failed.items())))
        raise FederationError(_reason(reason))
    infos = []
    for node in nodes:
        content = got.replies[node].content
        site, metrics = content.config_records["site"], content.metric_records["metrics"]
        images = {k.removesuffix("-images"): int(cast(int, v)) for k, v in metrics.items()}
        infos.append(SiteInfo(node, str(site["name"]), images, str(site.get("scaling", ""))))
    names = [i.name for i in infos]
    if len(set(names)) != len(names):
        raise FederationError(f"two sites share a name: {sorted(names)}; name them apart")
    scalings = {i.scaling for i in infos}
    if len(scalings) > 1:
        raise FederationError(f"the sites scale their patches differently: {sorted(scalings)}")
    return infos


def evaluate_messages(
    strategy: FedAvg,
    server_round: int,
    arrays: ArrayRecord,
    spec: ClientSpec,
    split: str,
    grid: Grid,
) -> list[Message]:
    config = ConfigRecord({SPEC_KEY: spec.to_json(), "split": split})
    return list(strategy.configure_evaluate(server_round, arrays, config, grid))


def known(messages: Iterable[Message], nodes: Iterable[int]) -> list[Message]:
    """The messages addressed to ``nodes`` (a node that joined later holds no known site)."""
    wanted = set(nodes)
    return [m for m in messages if m.metadata.dst_node_id in wanted]


def checkpoint(run_dir: Any, state: ServerState, strategy: FedAvg) -> None:
    state.strategy = strategy_state(strategy)
    save_state(run_dir, state)
