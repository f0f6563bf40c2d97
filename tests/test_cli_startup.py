"""The ``lale`` command starts without torch: heavy libraries load inside the commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lale import cli

HEAVY = (
    "torch",
    "lightning",
    "torchmetrics",
    "timm",
    "segmentation_models_pytorch",
    "rasterio",
    "onnxruntime",
    "matplotlib",
)
SRC = str(Path(cli.__file__).resolve().parents[2])
COMMANDS = sorted(command.name or "" for command in cli.app.registered_commands)


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_importing_the_cli_loads_no_heavy_library() -> None:
    code = f"import lale.cli, sys; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_version_loads_no_heavy_library() -> None:
    code = (
        "import sys; from lale.cli import app\n"
        "try:\n    app(['--version'])\nexcept SystemExit:\n    pass\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = _python("-c", code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("lale ") and lines[1:] == []


def test_lale_models_stay_reachable_from_the_package() -> None:
    import lale

    assert lale.create_model is lale.models.create_model
    assert "lale_t" in lale.list_models()
    assert issubclass(lale.UnknownModelError, Exception)
    with pytest.raises(AttributeError):
        _ = lale.no_such_name  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_works_in_a_fresh_process(command: str | None) -> None:
    args = ["-m", "lale.cli", *([command] if command else []), "--help"]
    done = _python(*args)
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "Traceback" not in done.stderr
