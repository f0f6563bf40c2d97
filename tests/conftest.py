"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread for the module's tests.

    Small convolutions gain nothing from more, and on a shared machine spinning OpenMP worker
    threads make them several times slower when another process holds a core.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained ``lale_t`` run for 8-bit RGB (the ARAS400k schema), built once per module."""
    from lale.data.schema import ARAS400K
    from lale.models import create_model
    from lale.runs import RunConfig, save_run

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("run")
    save_run(path, create_model("lale_t", 7, 3), RunConfig.from_schema("lale_t", ARAS400K))
    return path
