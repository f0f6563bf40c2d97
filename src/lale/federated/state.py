"""The server's state after every round, so a killed federation resumes at its last round.

``RUN/federation/`` holds ``options.json`` (the federation's options, written once),
``round-NNNN.safetensors`` (the global arrays after round N, and the strategy's own state:
FedAdam's moments) and ``state.json`` (the last finished round, the records of every round,
the best round). ``state.json`` is replaced last, by a rename, so it always points at a
complete round file; older round files are then removed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from numpy.typing import NDArray

from lale.atomic import write_bytes_atomic, write_json_atomic
from lale.errors import RunError

__all__ = ["FEDERATION_DIR", "ServerState", "load_state", "options_path", "save_state"]

FEDERATION_DIR = "federation"
_STATE = "state.json"
Arrays = dict[str, NDArray[Any]]


@dataclass
class ServerState:
    """Where a federation stands after ``round`` rounds.

    Attributes:
        round: Rounds finished (0: none yet).
        arrays: The global model's arrays after that round.
        strategy: The strategy's own arrays by name (``m_t``, ``v_t`` of FedAdam).
        records: One :mod:`lale.federated.record` row per finished round.
        best_round: The round whose global model scored best on the pooled val split.
        best_f1: That score.
        wall_seconds: Wall time of the finished rounds, all sessions together.
    """

    round: int
    arrays: Arrays
    strategy: dict[str, Arrays] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    best_round: int | None = None
    best_f1: float | None = None
    wall_seconds: float = 0.0


def options_path(run_dir: Path) -> Path:
    return run_dir / FEDERATION_DIR / "options.json"


def _round_file(folder: Path, number: int) -> Path:
    return folder / f"round-{number:04d}.safetensors"


def save_state(run_dir: Path, state: ServerState) -> None:
    """Write ``state`` (arrays first, then ``state.json``), then drop older round files."""
    folder = run_dir / FEDERATION_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"global/{k}": np.ascontiguousarray(v) for k, v in state.arrays.items()}
    for name, part in state.strategy.items():
        tensors.update({f"{name}/{k}": np.ascontiguousarray(v) for k, v in part.items()})
    target = _round_file(folder, state.round)
    write_bytes_atomic(target, safetensors.numpy.save(tensors))
    record = {
        "round": state.round,
        "arrays": target.name,
        "records": state.records,
        "best_round": state.best_round,
        "best_f1": state.best_f1,
        "wall_seconds": state.wall_seconds,
    }
    write_json_atomic(folder / _STATE, record)
    for old in folder.glob("round-*.safetensors"):
        if old != target:
            old.unlink(missing_ok=True)


def load_state(run_dir: Path) -> ServerState | None:
    """The state of the last finished round, or ``None`` when no round has finished.

    Raises:
        RunError: ``state.json`` or its round file is unreadable (names the file).
    """
    path = run_dir / FEDERATION_DIR / _STATE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        arrays_file = path.parent / str(record["arrays"])
        tensors = safetensors.numpy.load_file(arrays_file)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunError(path, f"unreadable federation state: {err}") from None
    parts: dict[str, Arrays] = {}
    for key, value in tensors.items():
        part, _, name = key.partition("/")
        parts.setdefault(part, {})[name] = value
    arrays = parts.pop("global", {})
    if not arrays:
        raise RunError(arrays_file, "no global arrays in the federation state")
    return ServerState(
        round=int(record["round"]),
        arrays=arrays,
        strategy=parts,
        records=list(record.get("records", [])),
        best_round=record.get("best_round"),
        best_f1=record.get("best_f1"),
        wall_seconds=float(record.get("wall_seconds", 0.0)),
    )
