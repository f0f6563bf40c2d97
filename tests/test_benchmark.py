"""``lale benchmark``: a tiny benchmark end to end, resume and growth, statistics, ablations.

Two tiny models × two seeds × three optimizer steps on 64² synthetic patches, through the
command line; one test kills a benchmark with SIGKILL in a subprocess and continues it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from scipy import stats
from test_lale import record_attention
from torch import nn
from typer.testing import CliRunner

from lale import cli
from lale.benchmark import ABLATIONS, PAIRED, WELCH, ablation_entries, mean_std, welch_gap
from lale.benchmark.claims import ablation_verdicts
from lale.benchmark.figures import pareto_front
from lale.benchmark.runner import _Progress
from lale.data.synthetic import write_dataset
from lale.models import create_model, registry
from lale.models.activations import StarReLU
from lale.models.blocks import Attention, attention_heads
from lale.models.network import build_lale
from lale.models.norms import RMSNorm2d
from lale.training.sampling import EpochBatchSampler

runner = CliRunner()
TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}
TINY_ARGS = [f"--model-arg={k}={json.dumps(v)}" for k, v in TINY.items()]
FAST = ["--batch-size=4", "--crop-size=64", "--profile-size=64", "--profile-batch=1"]
FAST += ["--no-progress"]

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),  # inside Lightning
]


class _Ref(nn.Module):
    """A tiny 'baseline'."""

    def __init__(self, num_classes: int = 7, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, num_classes, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture(scope="module")
def tiny_models() -> Iterator[None]:
    """``bench_lale`` (a shrunken LALE) and ``bench_ref`` in a private copy of the registry."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        registry.register_model("bench_lale", build_lale, family="lale", description="t", **TINY)
        registry.register_model("bench_ref", _Ref, family="baseline", description="t", width=8)
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=8, val=2, test=2, size=64, seed=0)
    return root


def _bench(data: Path, out: Path, *extra: str) -> Any:
    args = ["benchmark", f"--data={data}", f"--out={out}", "--steps=3", *FAST, *extra]
    return runner.invoke(cli.app, args)


@pytest.fixture(scope="module")
def bench(tiny_models: None, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out"
    result = _bench(data, out, "--models=bench_lale,bench_ref", "--seeds=2")
    assert result.exit_code == 0, result.output
    return out


def test_results_json_contract(bench: Path) -> None:
    results = json.loads((bench / "results.json").read_text())
    rows = {r["model"]: r for r in results["models"]}
    assert list(rows) == ["bench_lale", "bench_ref"]
    for row in rows.values():
        assert {"model", "params", "gmacs", "throughput", "storage_bytes"} <= row.keys()
        for key in ("macro_f1", "miou"):
            stat = row[key]
            assert len(stat["values"]) == 2
            assert stat["mean"] == pytest.approx(statistics.fmean(stat["values"]))
            assert stat["std"] == pytest.approx(statistics.stdev(stat["values"]))
        assert set(row["per_class_f1"]) >= {"Tree", "Water"}
        assert row["train"]["steps"] == [3, 3]  # the same budget for every run
        assert row["train"]["pixels_seen"] == [3 * 4 * 64 * 64] * 2
    assert rows["bench_lale"]["params"] == sum(
        p.numel() for p in create_model("bench_lale").parameters()
    )
    (claim,) = results["claims"]  # one rival
    assert claim["model"] == "bench_lale" and claim["reference"] == "bench_ref"
    gap = claim["f1_gap"]
    assert gap["test"] == PAIRED and gap["low"] <= gap["value"] <= gap["high"]
    assert 0.0 <= gap["p_value"] <= 1.0
    assert claim["welch"]["test"] == WELCH
    ref, own = rows["bench_ref"], rows["bench_lale"]
    assert claim["params_div"]["measured"] == pytest.approx(ref["params"] / own["params"])
    assert claim["throughput_x"]["measured"] == pytest.approx(own["throughput"] / ref["throughput"])
    assert claim["gmacs_div"]["published"] is None  # no paper figure for these models
    with open(bench / "results.csv", newline="") as fh:
        assert [r["model"] for r in csv.DictReader(fh)] == ["bench_lale", "bench_ref"]
    for name in ("report.md", "frontier.png", "per_class_f1.png"):
        assert (bench / name).is_file(), name
    assert not list(bench.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_adding_a_seed_trains_only_that_seed(bench: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(bench, out)
    kept = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/seed_*/test_metrics.json")}
    assert len(kept) == 4
    result = _bench(data, out, "--models=bench_lale,bench_ref", "--seeds=3")
    assert result.exit_code == 0, result.output
    assert "4 of 6 runs already finished" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    results = json.loads((out / "results.json").read_text())
    assert results["runs"] == {"skipped": 4, "trained": 2, "runs": 6}
    assert all(len(r["macro_f1"]["values"]) == 3 for r in results["models"])


def test_another_budget_in_the_same_folder_is_refused(bench: Path, data: Path) -> None:
    args = ["benchmark", f"--data={data}", f"--out={bench}", "--steps=4", *FAST]
    result = runner.invoke(cli.app, [*args, "--models=bench_lale", "--seeds=1"])
    assert result.exit_code == 1, result.output
    assert "another budget" in result.stderr


def test_a_step_budget_shorter_than_an_epoch_is_refused(
    tiny_models: None, data: Path, tmp_path: Path
) -> None:
    result = _bench(data, tmp_path / "out", "--models=bench_lale", "--samples-per-epoch=40")
    assert result.exit_code == 1, result.output
    assert "3 steps are less than one epoch (10 steps)" in result.stderr


def test_resume_after_kill_9_skips_finished_runs(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["benchmark", f"--data={data}", f"--out={out}", "--steps=30", *FAST]
    args += ["--models=lale_t", "--ablation=kernel", "--seeds=1", *TINY_ARGS]
    first = out / "runs" / "lale_t-K7" / "lr0.001" / "seed_0"
    second = out / "runs" / "lale_t-K3" / "lr0.001" / "seed_0"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log_path = tmp_path / "bench.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lale.cli", *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            deadline = time.monotonic() + 180
            while not (second / "config.json").is_file():  # the first run is finished
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"no second run to kill:\n{log_path.read_text()}")
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert not (second / "test_metrics.json").exists(), "the second run finished before the kill"
    finished = (first / "test_metrics.json").stat().st_mtime_ns
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "1 of 2 runs already finished" in result.stdout
    assert (first / "test_metrics.json").stat().st_mtime_ns == finished
    assert (second / "test_metrics.json").is_file()
    assert "lale_t-K3 vs lale_t-K7: ΔF1" in result.stdout  # the verdict line


def test_welch_gap_against_a_hand_computation() -> None:
    a, b = [0.61, 0.64, 0.66], [0.55, 0.58, 0.52]
    # By hand: means 0.63667 and 0.55; sample variances 6.3333e-4 and 9e-4.
    va, vb = 6.3333333e-4 / 3, 9e-4 / 3
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)
    gap = welch_gap(a, b)
    assert gap.value == pytest.approx(0.63666667 - 0.55)
    assert gap.df == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * se
    assert (gap.low, gap.high) == pytest.approx((gap.value - half, gap.value + half))
    assert gap.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert gap.test == WELCH
    one = welch_gap([0.7], [0.6])
    assert one.value == pytest.approx(0.1) and one.p_value is None and one.low is None
    assert mean_std([0.5]) == {"mean": 0.5, "std": None, "values": [0.5]}


def test_verdict_lines_name_the_gap_and_the_costs() -> None:
    def row(name: str, f1: list[float], gmacs: float, thr: float) -> dict[str, Any]:
        return {"model": name, "macro_f1": mean_std(f1), "gmacs": gmacs, "throughput": thr}

    rows = [row("paper", [0.60, 0.61, 0.62], 1.0, 100.0), row("wide", [0.70, 0.71, 0.72], 2.0, 50)]
    (line,) = ablation_verdicts(rows)
    assert line.startswith("wide vs paper: ΔF1 +10.0 pts [")
    assert "ΔGMACs +100%, Δthroughput -50% → F1 higher" in line


def _config_fields(entry: Any) -> dict[str, Any]:
    model = create_model(entry.model, **entry.kwargs)
    return dict(model.config.to_dict())


@pytest.mark.parametrize("model", ["lale_t", "lale_s1"])
@pytest.mark.parametrize("name", list(ABLATIONS))
def test_ablation_variants_differ_only_where_they_should(name: str, model: str) -> None:
    entries = ablation_entries(name, model)
    configs = [_config_fields(e) for e in entries]
    changed = {k for c in configs[1:] for k in c if c[k] != configs[0][k]}
    assert changed == {k for _, kwargs in ABLATIONS[name] for k in kwargs}
    assert configs[0] == create_model(model).config.to_dict()  # type: ignore[operator]
    if model == "lale_t":
        assert entries[0].label == {"decoder": "lale_t-D64"}.get(name, entries[0].label)


@pytest.mark.parametrize("model", ["lale_t", "lale_s1"])
def test_attention_ablation_moves_attention_by_resolution(model: str) -> None:
    tokens = {
        e.label: sorted(set(record_attention(create_model(e.model, **e.kwargs), 128, 128)))
        for e in ablation_entries("attention", model)
    }
    assert tokens == {
        f"{model}-attn16": [16, 64],  # 1/16 and 1/32 of 128²
        f"{model}-attn8": [16, 64, 256],
        f"{model}-attn4": [16, 64, 256, 1024],
        f"{model}-noattn": [],
    }


def test_narrow_attention_stages_get_one_full_width_head() -> None:
    (attn4,) = [e for e in ablation_entries("attention", "lale_s1") if e.label.endswith("attn4")]
    model = create_model(attn4.model, **attn4.kwargs)
    heads = [(m.heads, m.head_dim) for m in model.modules() if isinstance(m, Attention)]
    # lale_s1's widths 24, 48, 96, 192: one head of 24 and of 48, then 32-channel heads.
    assert sorted(set(heads)) == [(1, 24), (1, 48), (3, 32), (6, 32)]
    assert attention_heads(80, 32) == 2
    with pytest.raises(ValueError, match="does not split"):
        attention_heads(100, 32)  # 3 heads of 33.3 channels


def test_norm_act_ablation_swaps_every_norm_and_activation() -> None:
    paper, classic = (
        create_model(e.model, **e.kwargs) for e in ablation_entries("norm-act", "lale_t")
    )
    kinds = [{type(m) for m in net.modules()} for net in (paper, classic)]
    assert {RMSNorm2d, nn.RMSNorm, StarReLU} <= kinds[0]
    assert not {nn.BatchNorm2d, nn.LayerNorm, nn.GELU} & kinds[0]
    assert {nn.BatchNorm2d, nn.LayerNorm, nn.GELU} <= kinds[1]
    assert not {RMSNorm2d, nn.RMSNorm, StarReLU} & kinds[1]
    assert classic(torch.randn(2, 3, 64, 64)).shape == (2, 7, 64, 64)


def test_samples_per_epoch_repeats_images_with_fresh_crops() -> None:
    plain = EpochBatchSampler(5, 2, seed=3)
    more = EpochBatchSampler(5, 2, seed=3, samples_per_epoch=12)
    assert more.keys()[:5] == plain.keys()  # the first pass is today's epoch
    keys = more.keys()
    assert len(more) == 6 and sorted({i for i, _ in keys}) == [0, 1, 2, 3, 4]
    assert len({s for _, s in keys}) == 12  # every crop its own seed
    again = EpochBatchSampler(5, 2, seed=3, samples_per_epoch=12)
    assert again.keys() == more.keys()  # a function of (seed, epoch) alone
    again.set_epoch(1)
    assert again.keys() != more.keys()


def test_pareto_front() -> None:
    # (GMACs, F1): lower x is better; (3, 0.5) is beaten by (1, 0.6).
    points = [(1.0, 0.6), (2.0, 0.7), (3.0, 0.5), (4.0, 0.8)]
    assert pareto_front(points, higher_x_better=False) == [0, 1, 3]
    # (images/s, F1): higher x is better; only (4, 0.8) is not beaten.
    assert pareto_front(points, higher_x_better=True) == [3]


def test_progress_names_the_run_and_the_epoch() -> None:
    from rich.progress import Progress

    bar = Progress(disable=True)
    task = bar.add_task("benchmark", total=10)
    callback = _Progress(bar, task, "run 2/4: lale_t seed 1", per_second=False)
    trainer: Any = type("T", (), {"current_epoch": 3, "global_step": 5})()
    callback.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
    callback.on_train_batch_end(trainer)
    assert bar.tasks[0].description == "run 2/4: lale_t seed 1 · epoch 3"
    assert bar.tasks[0].completed == 1


def test_train_takes_samples_per_epoch(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", f"--data={data}", f"--out={out}", "--epochs=1", "--batch-size=4"]
    args += ["--crop-size=64", "--samples-per-epoch=12", "--no-progress", *TINY_ARGS]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["samples_per_epoch"] == 12
    with open(out / "metrics.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["step"] == "3"  # 12 crops of 8 images in batches of 4


def test_claims_carry_the_papers_figures() -> None:
    from lale.benchmark.claims import claims

    def row(name: str, family: str, f1: list[float], params: int, gmacs: float) -> dict[str, Any]:
        return {
            "model": name,
            "arch": name,
            "family": family,
            "macro_f1": mean_std(f1),
            "params": params,
            "storage_bytes": params * 4,
            "gmacs": gmacs,
            "throughput": 10.0,
        }

    rows = [
        row("lale_s1", "lale", [0.70, 0.72], 1_600_000, 0.6),
        row("unet", "baseline", [0.74, 0.75], 6_300_000, 3.0),
        row("upernet", "baseline", [0.73, 0.74], 11_600_000, 13.6),
    ]
    from lale.benchmark.results import published_points

    unet, upernet = claims(
        rows, None, majority=0.1, protocol="p", published=published_points()
    )  # every rival, in order
    assert (unet["reference"], upernet["reference"]) == ("unet", "upernet")
    assert upernet["params_div"]["published"] == pytest.approx(11.6 / 1.6)
    assert upernet["gmacs_div"]["published"] == pytest.approx(13.62 / 0.59)
    assert upernet["f1_gap"]["published"] == pytest.approx(0.7469 - 0.7731)
    assert upernet["storage_div"]["published"] is None  # the paper publishes no storage


def test_presets_name_registered_models() -> None:
    from lale.benchmark import PRESETS
    from lale.models.registry import model_kwargs

    for preset in PRESETS.values():
        for name in preset.models:
            model_kwargs(name)
    assert PRESETS["quick"].seeds == 3 and PRESETS["quick"].synthetic is not None


def test_the_frontier_preset_weighs_lale_against_every_frontier_model() -> None:
    from lale.benchmark import PRESETS
    from lale.models.registry import get_entry, list_models

    quick, frontier = PRESETS["quick"], PRESETS["frontier"]
    assert frontier.models[:2] == ("lale_s1", "lale_s2")
    assert set(frontier.models[2:]) == set(list_models(family="frontier"))
    assert all(get_entry(n).family == "frontier" for n in frontier.models[2:])
    # The quick preset's data, recipe and budget: lale_s1's runs are the same runs.
    assert (frontier.synthetic, frontier.recipe, frontier.budget, frontier.seeds) == (
        quick.synthetic,
        quick.recipe,
        quick.budget,
        quick.seeds,
    )
    assert frontier.protocol.bn_stats == "recompute" and "minutes" in frontier.expected
