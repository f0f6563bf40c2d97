"""A whole federation on one machine, through Flower's simulation engine (Ray backend).

Sized for small machines: every client asks for all of the machine's cores (and its GPU, if
any), so Ray runs one client at a time, and clients load data in the training process
(``num_workers=0``). The ServerApp runs :func:`~lale.federated.rounds.run_federation` in this
process; its error, if any, is raised here once the engine has stopped.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from lale.federated.client import make_client_app
from lale.federated.options import FederateOptions
from lale.federated.rounds import FederationResult, Tick, run_federation
from lale.federated.server import FederationError
from lale.federated.sites import Site

__all__ = ["simulate"]

Say = Callable[[str], None]


@contextmanager
def quiet_flower() -> Iterator[None]:
    """Flower's and Ray's INFO chatter off the terminal while lale reports progress itself."""
    loggers = [logging.getLogger(n) for n in ("flwr", "ray")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="ray")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _backend() -> dict[str, Any]:
    import torch

    cpus = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    gpus = 1 if torch.cuda.is_available() else 0
    return {
        "client_resources": {"num_cpus": cpus, "num_gpus": gpus},
        "init_args": {
            "num_cpus": cpus,
            "num_gpus": gpus,
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        },
    }


def simulate(
    options: FederateOptions,
    sites: Sequence[Site],
    say: Say = print,
    tick: Tick = lambda done, what: None,
) -> FederationResult:
    """Run ``options`` over ``sites`` in Flower's simulation engine; the finished federation.

    Raises:
        FederationError: As :func:`~lale.federated.rounds.run_federation`, or the engine
            stopped without the server finishing.
    """
    from flwr.simulation import run_simulation

    outcome: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            outcome["result"] = run_federation(grid, options, len(sites), say, tick)
        except BaseException as err:  # raised again below, in the caller's thread
            outcome["error"] = err

    with quiet_flower():
        run_simulation(
            server_app=server,
            client_app=make_client_app(list(sites)),
            num_supernodes=len(sites),
            backend_config=_backend(),
        )
    if "error" in outcome:
        raise outcome["error"]
    if "result" not in outcome:
        raise FederationError("Flower's simulation engine stopped before the federation ended")
    result: FederationResult = outcome["result"]
    return result
