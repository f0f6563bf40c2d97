"""A Flower App folder for a deployed federation: ``lale federate --write-app DIR``.

The folder holds one ``pyproject.toml``: the app's components (:mod:`lale.federated.app`) and
its run config (every option of the federation, see :func:`~lale.federated.options.to_run_config`,
plus ``sites``, the number of SuperNodes the server waits for). ``flwr run DIR SUPERLINK``
sends it to the SuperLink; ``--run-config "rounds=20"`` overrides single keys.
"""

from __future__ import annotations

from pathlib import Path

import tomli_w

from lale.atomic import write_bytes_atomic
from lale.errors import UsageError
from lale.federated.options import FederateOptions, to_run_config

__all__ = ["APP_FILE", "write_app"]

APP_FILE = "pyproject.toml"


def write_app(folder: Path, options: FederateOptions, sites: int) -> Path:
    """Write the Flower App for ``options`` with ``sites`` SuperNodes into ``folder``.

    Raises:
        UsageError: ``folder`` already holds another project's ``pyproject.toml``.
    """
    target = folder / APP_FILE
    if target.exists() and "lale.federated.app" not in target.read_text(errors="replace"):
        raise UsageError(f"{target}: exists and is not a lale Flower App; choose another folder")
    if sites < 2:
        raise UsageError(f"a federation needs at least two sites, got --num-sites {sites}")
    config = {**to_run_config(options), "sites": sites}
    document = {
        "build-system": {"requires": ["hatchling"], "build-backend": "hatchling.build"},
        "project": {
            "name": "lale-federation",
            "version": "1.0.0",
            "description": f"lale federation: {options.model}, {options.strategy}, {sites} sites",
            "license": "Apache-2.0",
            # lale (with its federated extra) is installed on every machine beforehand.
            "dependencies": [],
        },
        "tool": {
            "hatch": {"build": {"targets": {"wheel": {"packages": ["."]}}}},
            "flwr": {
                "app": {
                    "publisher": "lale",
                    "components": {
                        "serverapp": "lale.federated.app:server_app",
                        "clientapp": "lale.federated.app:client_app",
                    },
                    "config": config,
                }
            },
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, tomli_w.dumps(document).encode())
    return target
