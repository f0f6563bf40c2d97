"""The Flower App of a deployed federation: ``server_app`` and ``client_app``.

A Flower App folder written by ``lale federate --write-app DIR`` names these two objects as
its components; ``flwr run DIR SUPERLINK`` starts ``server_app`` on the SuperLink's machine
with the options in the app's run config, and each ``flower-supernode`` runs ``client_app``
on its own ``data-dir``. lale must be installed (with the ``federated`` extra) on every machine.
"""

from __future__ import annotations

import logging

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from lale.errors import LaleError
from lale.federated.client import make_client_app
from lale.federated.options import from_run_config

__all__ = ["client_app", "server_app"]

log = logging.getLogger("lale.federate")
client_app = make_client_app()
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the federation of the app's run config; a lale error ends it with one line."""
    from lale.federated.rounds import run_federation

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = dict(context.run_config)
    try:
        options = from_run_config(config)
        result = run_federation(grid, options, int(config.get("sites", 2)), say=log.info)
    except LaleError as err:
        log.error("error: %s", err)
        raise SystemExit(err.exit_code) from None
    log.info(
        "federation done: %d rounds, best pooled val macro-F1 %s at round %s; run directory %s",
        result.rounds,
        "—" if result.best_f1 is None else f"{result.best_f1:.2%}",
        result.best_round,
        result.run_dir,
    )
