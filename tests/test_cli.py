"""Tests for the ``lale`` command line (kept fast: tiny registered models, tiny inputs)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from lale import cli
from lale.cli import demo as demo_cli
from lale.demo import DemoConfig
from lale.models import registry
from lale.profiling import lale_version

runner = CliRunner()

FAST = ["--size", "64", "--batch-size", "2", "--repeats", "1", "--warmup", "1"]


class _Tiny(nn.Module):
    def __init__(self, num_classes: int = 7, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.body(x), size=x.shape[-2:], mode="bilinear")


def _build(num_classes: int = 7, in_channels: int = 3, width: int = 8) -> nn.Module:
    return _Tiny(num_classes, in_channels, width)


@pytest.fixture(autouse=True)
def tiny_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register two tiny models in a private copy of the registry (restored afterwards)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    for name, family, width in (("cli_tiny", "lale", 8), ("cli_ref", "baseline", 24)):
        registry.register_model(
            name, _build, family=family, description=f"cli test {name}", width=width
        )
    yield


def test_version() -> None:
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"lale {lale_version()}"


def test_help_lists_commands() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0
    for command in ("models", "profile", "demo"):
        assert command in result.stdout


def test_models_table() -> None:
    result = runner.invoke(cli.app, ["models", "--size", "64", "--family", "lale"])
    assert result.exit_code == 0, result.output
    assert "cli_tiny" in result.stdout and "cli_ref" not in result.stdout
    assert "GMACs @64²" in result.stdout


def test_profile_with_reference_and_json(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    args = ["profile", "cli_tiny", *FAST, "--reference", "cli_ref", "--json", str(out)]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "cli_tiny" in result.stdout and "cli_ref" in result.stdout
    assert "throughput ×" in result.stdout and "params ÷" in result.stdout
    data = json.loads(out.read_text())
    assert [m["name"] for m in data["models"]] == ["cli_ref", "cli_tiny"]
    assert data["settings"]["size"] == 64 and data["settings"]["repeats"] == 1
    assert data["models"][1]["ratios"]["params"] > 1


def test_profile_unknown_model_is_one_line_error() -> None:
    args = ["profile", "cli_tiny", "nope_net", *FAST, "--reference", "cli_ref"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "nope_net" in lines[0] and "cli_tiny" in lines[0]  # lists the valid names


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_profile_cuda_unavailable_is_one_line_error() -> None:
    args = ["profile", "cli_tiny", *FAST, "--reference", "cli_ref", "--device", "cuda"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0]


def test_profile_unknown_reference_is_an_error() -> None:
    result = runner.invoke(cli.app, ["profile", "cli_tiny", *FAST, "--reference", "nope_ref"])
    assert result.exit_code != 0 and "nope_ref" in result.stderr
    assert "Traceback" not in result.output


def test_profile_bad_dtype_rejected() -> None:
    result = runner.invoke(cli.app, ["profile", "cli_tiny", *FAST, "--dtype", "fp16"])
    assert result.exit_code != 0


def test_demo_runs_the_whole_job(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lale.recipe import Recipe

    recipe = Recipe(batch_size=4, crop_size=64, loss="dice+ce")
    demo = DemoConfig(
        baseline="cli_ref", train=8, val=2, test=2, size=64, recipe=recipe, steps=2, profile_batch=1
    )
    monkeypatch.setattr(demo_cli, "DEMO", demo)
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--seeds", "2", "--no-progress"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "lale_t test macro-F1:" in result.stdout and "(n=2)" in result.stdout
    assert "cli_ref test macro-F1:" in result.stdout
    # One line per claim, last: lale against the baseline, trained on the same budget.
    claim = "lale_t vs cli_ref [one recipe lr, BN recomputed]: "
    assert result.stdout.splitlines()[-2].startswith(claim)
    outputs = ("results.json", "results.csv", "report.md", "frontier.png", "per_class_f1.png")
    for name in (*outputs, "curves.png"):
        assert (out / name).is_file(), name
    for model in ("lale_t", "cli_ref"):
        for seed in (0, 1):
            (run,) = (out / "runs" / model).glob(f"*/seed_{seed}")
            assert (run / "test_metrics.json").is_file() and (run / "samples.png").is_file()
            assert (run / "curve.json").is_file()
    results = json.loads((out / "results.json").read_text())
    assert [r["train"]["steps"] for r in results["models"]] == [[2, 2], [2, 2]]
    # Idempotent: a second demo reuses the dataset and replaces the runs.
    again = runner.invoke(cli.app, ["demo", "--out", str(out), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert "reusing the synthetic dataset" in again.stdout
    assert not list((out / "runs" / "lale_t").glob("*/seed_1"))


def test_synth_writes_the_layout_and_a_mosaic(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["synth", str(out), "--train", "3", "--val", "1", "--test", "2", "--size", "64"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    for split, n in (("train", 3), ("val", 1), ("test", 2)):
        assert len(list((out / split / "images").glob("*.png"))) == n
        assert len(list((out / split / "masks").glob("*.png"))) == n
    assert (out / "samples.png").is_file() and (out / "synthetic.json").is_file()
    assert "Tree" in result.stdout and "Water" in result.stdout
    again = tmp_path / "again"
    assert runner.invoke(cli.app, [*args[:1], str(again), *args[2:], "--no-mosaic"]).exit_code == 0
    first = (out / "train" / "images" / "train_000000.png").read_bytes()
    assert first == (again / "train" / "images" / "train_000000.png").read_bytes()
    assert not (again / "samples.png").exists()


@pytest.mark.parametrize("broken", ["missing", "bad_json", "no_weights"])
def test_a_broken_run_directory_exits_2_from_every_command(tmp_path: Path, broken: str) -> None:
    run = tmp_path / "run"
    if broken != "missing":
        run.mkdir()
    if broken == "bad_json":
        (run / "config.json").write_text("{not json")
    if broken == "no_weights":
        from lale.data.schema import ARAS400K
        from lale.runs import RunConfig, save_config

        save_config(run / "config.json", RunConfig.from_schema("cli_tiny", ARAS400K))
    commands = {
        "evaluate": ["evaluate", f"--run={run}", f"--data={tmp_path / 'data'}"],
        "predict": ["predict", f"--run={run}", f"--out={tmp_path / 'out'}", "x.tif"],
        "export": ["export", f"--run={run}", f"--out={tmp_path / 'm.onnx'}"],
    }
    lines = {}
    for name, args in commands.items():
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output
        lines[name] = result.stderr.strip().splitlines()
        assert len(lines[name]) == 1 and lines[name][0].startswith("error: "), (name, lines)
    assert lines["evaluate"] == lines["predict"] == lines["export"]


def test_interrupt_exits_130_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import lale.profiling

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lale.profiling, "summarize_models", interrupted)
    result = runner.invoke(cli.app, ["models", "--size", "64"])
    assert result.exit_code == 130
    assert result.stderr.strip() == "error: interrupted"


def test_an_unexpected_error_is_a_bug_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import lale.profiling

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(lale.profiling, "summarize_models", broken)
    result = runner.invoke(cli.app, ["models", "--size", "64"])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)
