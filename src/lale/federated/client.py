"""The Flower ClientApp: one site's answers to the server's query, train and evaluate messages.

A site is found from the node's config: ``data-dir`` (and optionally ``site``, its name; default
the folder name) on a real SuperNode (``flower-supernode --node-config "data-dir='…'"``), or
``partition-id`` into the sites the simulation was given. Every message carries the
federation's :class:`~lale.federated.options.ClientSpec` as JSON (``config["lale-spec"]``).

- ``query``: check the site (file headers, masks against the federation's schema, its own
  ``schema.json`` if it has one) and report its name and patch counts.
- ``train``: load the global arrays (FedBN: this site's BatchNorm tensors kept from its last
  round, in the node's ``context.state``), train locally, reply with the new arrays and
  ``num-examples`` (the site's training patches: FedAvg's weight).
- ``evaluate``: score the global model on ``config["split"]`` and reply with the confusion
  matrix, so the server can pool every site's pixels.

An exception in a handler becomes an error reply (Flower's), which the server reports and
leaves out of the round.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from lale.data.folder import data_scaling
from lale.data.schema import ClassSchema, resolve_schema
from lale.errors import DataError
from lale.federated.local import (
    batch_norm_keys,
    build_task,
    check_site,
    load_state,
    score_split,
    shared_state,
    site_seed,
    train_locally,
)
from lale.federated.options import ClientSpec
from lale.federated.sites import Site

__all__ = ["SPEC_KEY", "make_client_app"]

SPEC_KEY = "lale-spec"
_LOCAL_BN = "lale-fedbn"


def _quiet() -> None:
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*(does not have many workers|LeafSpec).*")


def _site(context: Context, sites: Sequence[Site] | None) -> Site:
    node = context.node_config
    if "data-dir" in node:
        root = Path(str(node["data-dir"]))
        return Site(str(node.get("site", root.resolve().name)), root)
    if sites is not None and "partition-id" in node:
        return sites[int(node["partition-id"])]
    raise DataError(
        "node-config", "this SuperNode has no data-dir (--node-config \"data-dir='…'\")"
    )


def _spec(msg: Message) -> ClientSpec:
    return ClientSpec.from_json(str(msg.content.config_records["config"][SPEC_KEY]))


def _global(
    msg: Message, context: Context, spec: ClientSpec
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The message's global state dict, and this site's own BatchNorm tensors (FedBN)."""
    keep: dict[str, Any] = {}
    if spec.fedbn and _LOCAL_BN in context.state.array_records:
        keep = context.state.array_records[_LOCAL_BN].to_torch_state_dict()
    return msg.content.array_records["arrays"].to_torch_state_dict(), keep


def _reply(msg: Message, **records: ArrayRecord | MetricRecord | ConfigRecord) -> Message:
    return Message(content=RecordDict(records), reply_to=msg)


def make_client_app(sites: Sequence[Site] | None = None) -> ClientApp:
    """The ClientApp; ``sites``: the simulation's sites, by ``partition-id``."""
    app = ClientApp()

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        spec, site = _spec(msg), _site(context, sites)
        try:
            if not site.root.is_dir():
                raise DataError(site.root, "no such dataset folder")
            federation = ClassSchema.from_dict(spec.schema)
            own = resolve_schema(site.root, None) if (site.root / "schema.json").exists() else None
            if own is not None and own.to_dict() != federation.to_dict():
                raise DataError(
                    site.root / "schema.json",
                    f"classes {list(own.names)} differ from the federation's "
                    f"{list(federation.names)}",
                )
            counts = check_site(site.root, spec)
        except DataError as err:
            raise DataError(err.path, f"site {site.name}: {err.problem}") from None
        return _reply(
            msg,
            site=ConfigRecord(
                {"name": site.name, "root": str(site.root), "scaling": data_scaling(site.root)}
            ),
            metrics=MetricRecord({f"{k}-images": v for k, v in counts.items()}),
        )

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        _quiet()
        spec, site = _spec(msg), _site(context, sites)
        config = msg.content.config_records["config"]
        server_round = int(cast(int, config.get("server-round", 0)))
        seed = site_seed(spec.seed, server_round, site.name)
        torch.manual_seed(seed)
        task = build_task(spec, seed, mu=float(cast(float, config.get("proximal-mu", 0.0))))
        load_state(task.net, *_global(msg, context, spec))
        task.anchor()
        result = train_locally(task, site.root, spec, seed)
        state = shared_state(task.net)
        if spec.fedbn:
            full = task.net.state_dict()
            own = {k: full[k].detach().cpu().clone() for k in batch_norm_keys(task.net)}
            context.state[_LOCAL_BN] = ArrayRecord(own)
        return _reply(
            msg,
            arrays=ArrayRecord(state),
            metrics=MetricRecord(
                {
                    "num-examples": result.examples,
                    "train-loss": result.loss,
                    "steps": result.steps,
                    "seconds": result.seconds,
                    "proximal": task.last_proximal,
                }
            ),
        )

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        _quiet()
        spec, site = _spec(msg), _site(context, sites)
        split = str(msg.content.config_records["config"].get("split", "val"))
        task = build_task(spec, spec.seed)
        load_state(task.net, *_global(msg, context, spec))
        confusion, images = score_split(task.net, site.root, spec, split)
        return _reply(
            msg,
            metrics=MetricRecord(
                {"num-examples": images, "confusion": [int(v) for v in confusion.ravel()]}
            ),
        )

    return app
