"""``federation.json`` and its figure: what every round scored and what it sent.

Per round: the global model's val macro-F1 pooled over every site's pixels (the sum of the
sites' confusion matrices), each site's own val macro-F1, training loss and steps, the bytes
sent down to and up from each site (Flower's ``ArrayRecord.count_bytes``: tensor data and key
names), the sites left out and why, and the round's wall time. Training traffic (the model
down, the update up) and evaluation traffic (the model down again to score it) are kept apart;
"MB per round" is the training traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lale.atomic import atomic_path
from lale.training.metrics import scores_from_confusion

__all__ = ["FEDERATION_FIGURE", "FEDERATION_JSON", "mb_to_reach", "plot_federation", "pooled"]

FEDERATION_JSON = "federation.json"
FEDERATION_FIGURE = "federation.png"
MB = 1e6


def pooled(confusions: Sequence[Sequence[int]], names: Sequence[str]) -> dict[str, Any]:
    """Scores of the sum of the sites' flattened ``K×K`` confusion matrices."""
    k = len(names)
    total = np.zeros((k, k), np.int64)
    for flat in confusions:
        total += np.asarray(flat, np.int64).reshape(k, k)
    return scores_from_confusion(total, names)


def traffic_mb(record: Mapping[str, Any]) -> float:
    """Training traffic of one round, all sites, down and up, in MB."""
    return sum(s["bytes_down"] + s["bytes_up"] for s in record["sites"].values()) / MB


def mb_to_reach(records: Sequence[Mapping[str, Any]], f1: float) -> float | None:
    """Training traffic (MB, all sites) until the pooled val macro-F1 first reached ``f1``."""
    spent = 0.0
    for record in records:
        spent += traffic_mb(record)
        score = record.get("global_val_macro_f1")
        if score is not None and score >= f1:
            return spent
    return None


def plot_federation(
    records: Sequence[Mapping[str, Any]],
    path: Path,
    title: str,
    centralized: float | None = None,
) -> Path:
    """Val macro-F1 against rounds (global and per site) and against MB sent; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in records]
    glob = [r.get("global_val_macro_f1") for r in records]
    spent = np.cumsum([traffic_mb(r) for r in records])
    sites = sorted({name for r in records for name in r["sites"]})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    left.plot(rounds, glob, "o-", color="black", label="global (pooled val)")
    for name in sites:
        own = [r["sites"].get(name, {}).get("val_macro_f1") for r in records]
        left.plot(rounds, own, "--", alpha=0.7, label=name)
    right.plot(spent, glob, "o-", color="black", label="global (pooled val)")
    for axis in (left, right):
        if centralized is not None:
            axis.axhline(centralized, color="tab:red", linestyle=":", label="centralized")
        axis.set_ylabel("val macro-F1")
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    left.set_xlabel("round")
    right.set_xlabel("MB sent (model down + update up, all sites)")
    left.legend(fontsize=8)
    fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
