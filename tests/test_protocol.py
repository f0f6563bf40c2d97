"""The benchmark's protocol: BatchNorm statistics, budget curves, tuning, statistics, bad pairs.

Tiny models on 64² synthetic patches, through the command line where a user would type it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file as load_weights_file
from scipy import stats
from torch import nn
from typer.testing import CliRunner

from lale import cli
from lale.benchmark.claims import claim_line, claims, learned, pareto, protocol_changes
from lale.benchmark.report import _pareto
from lale.benchmark.statistics import (
    PAIRED,
    bootstrap_gap,
    macro_f1,
    majority_f1,
    mean_std,
    paired_gap,
    seeds_needed,
)
from lale.data.synthetic import write_dataset
from lale.models import create_model, registry
from lale.models.network import build_lale
from lale.training.bn_stats import (
    has_batch_norm,
    recompute_bn_stats,
    restore_bn_stats,
    snapshot_bn_stats,
)
from lale.training.curve import curve_fractions
from lale.training.metrics import scores_from_confusion

runner = CliRunner()
TINY: dict[str, Any] = {"dims": [8, 16, 32, 32], "depths": [1, 1, 1, 1], "decoder_dim": 16}
FAST = ["--batch-size=4", "--crop-size=64", "--no-progress"]
BENCH = [*FAST, "--profile-size=64", "--profile-batch=1", "--samples-per-epoch=8"]

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
]


class _BnNet(nn.Module):
    """A tiny network with BatchNorm (a 'baseline' whose eval statistics matter)."""

    def __init__(self, num_classes: int = 7, in_channels: int = 3, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width, momentum=0.01),
            nn.ReLU(),
            nn.Conv2d(width, num_classes, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture(scope="module")
def models() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        registry.register_model("p_lale", build_lale, family="lale", description="t", **TINY)
        registry.register_model("p_bn", _BnNet, family="baseline", description="t", width=8)
        yield


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root, train=8, val=2, test=3, size=64, seed=0)
    return root


# -- BatchNorm statistics ---------------------------------------------------------------------
def test_recompute_is_the_plain_average_of_batch_statistics() -> None:
    torch.manual_seed(0)
    net = _BnNet().train()
    batches = [torch.randn(4, 3, 8, 8) * (i + 1) for i in range(3)]
    weights = {k: v.clone() for k, v in net.named_parameters()}
    features = [net.body[0](b).detach() for b in batches]
    assert recompute_bn_stats(net, lambda: iter(batches)) == 3
    bn = net.body[1]
    mean = torch.stack([f.mean((0, 2, 3)) for f in features]).mean(0)
    var = torch.stack([f.transpose(0, 1).flatten(1).var(1) for f in features]).mean(0)
    assert torch.allclose(bn.running_mean, mean, atol=1e-5)
    assert torch.allclose(bn.running_var, var, atol=1e-4)
    assert bn.momentum == 0.01 and net.training  # settings and mode restored
    assert all(torch.equal(v, weights[k]) for k, v in net.named_parameters())  # untouched


def test_snapshot_restores_the_running_statistics() -> None:
    net = _BnNet()
    saved = snapshot_bn_stats(net)
    recompute_bn_stats(net, lambda: iter([torch.randn(2, 3, 8, 8) + 5]))
    assert not torch.equal(net.body[1].running_mean, saved[0]["running_mean"])
    restore_bn_stats(net, saved)
    assert torch.equal(net.body[1].running_mean, saved[0]["running_mean"])


def test_lale_has_no_batch_norm_and_is_left_exactly_as_it_was() -> None:
    net = create_model("lale_s1").eval()
    assert not has_batch_norm(net)
    x = torch.randn(1, 3, 64, 64)
    before = net(x)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert recompute_bn_stats(net, lambda: iter([torch.randn(2, 3, 64, 64)])) == 0
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    assert torch.equal(net(x), before)


def _train(data: Path, out: Path, model: str, *extra: str) -> Any:
    args = ["train", f"--data={data}", f"--out={out}", f"--model={model}", "--max-steps=6"]
    return runner.invoke(cli.app, [*args, *FAST, "--samples-per-epoch=8", *extra])


def test_recomputed_statistics_change_the_scores_not_the_training(
    models: None, data: Path, tmp_path: Path
) -> None:
    runs = {}
    for kind in ("running", "recompute"):
        result = _train(data, tmp_path / kind, "p_bn", f"--bn-stats={kind}")
        assert result.exit_code == 0, result.output
        runs[kind] = tmp_path / kind
    ckpts = {
        k: torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for k, d in runs.items()
    }
    # The trajectory (weights and running statistics) is the same under both protocols ...
    assert ckpts["running"].keys() == ckpts["recompute"].keys()
    assert all(torch.equal(ckpts["running"][k], ckpts["recompute"][k]) for k in ckpts["running"])
    # ... the kept weights carry the statistics that were scored: re-estimated ones differ.
    kept = {k: load_weights_file(d / "model.safetensors") for k, d in runs.items()}
    mean = "body.1.running_mean"
    assert not torch.equal(kept["running"][mean], kept["recompute"][mean])
    assert json.loads((runs["recompute"] / "config.json").read_text())["recipe"]["bn_stats"] == (
        "recompute"
    )


def test_lale_scores_the_same_under_both_protocols(
    models: None, data: Path, tmp_path: Path
) -> None:
    scores = []
    for kind in ("running", "recompute"):
        result = _train(data, tmp_path / kind, "p_lale", f"--bn-stats={kind}")
        assert result.exit_code == 0, result.output
        scores.append(json.loads((tmp_path / kind / "test_metrics.json").read_text()))
    assert scores[0]["confusion_matrix"] == scores[1]["confusion_matrix"]


# -- budget curves ----------------------------------------------------------------------------
def test_curve_fractions_double_up_to_the_whole_budget() -> None:
    assert curve_fractions(4) == (0.125, 0.25, 0.5, 1.0)
    assert curve_fractions(1) == (1.0,)


@pytest.fixture(scope="module")
def bench(models: None, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out"
    args = ["benchmark", f"--data={data}", f"--out={out}", "--steps=8", "--seeds=2"]
    args += ["--models=p_lale,p_bn", "--bn-stats=both", "--tune=lr", "--lr-grid=1e-3,3e-3"]
    result = runner.invoke(cli.app, [*args, *BENCH])
    assert result.exit_code == 0, result.output
    (out / "stdout.txt").write_text(result.stdout)
    return out


def test_curve_scores_val_and_test_at_each_point(bench: Path) -> None:
    curve = json.loads((bench / "runs/p_bn/lr0.001-bnrecompute/seed_0/curve.json").read_text())
    points = curve["points"]
    assert [p["step"] for p in points] == [1, 2, 4, 8]
    assert [p["fraction"] for p in points] == [0.125, 0.25, 0.5, 1.0]
    for p in points:
        assert 0 <= p["test_f1"] <= 1 and 0 <= p["val_f1"] <= 1
        assert p["bn"]["recompute"]["test_f1"] == p["test_f1"]  # the run's own protocol
    lale = json.loads((bench / "runs/p_lale/lr0.001/seed_0/curve.json").read_text())
    assert "bn" not in lale["points"][0]  # no BatchNorm: scored once


def test_a_curve_changes_nothing_in_training(models: None, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["benchmark", f"--data={data}", f"--out={out}", "--steps=8", "--seeds=1"]
    result = runner.invoke(cli.app, [*args, "--models=p_bn", "--curve=1", *BENCH])
    assert result.exit_code == 0, result.output
    plain = out / "runs/p_bn/lr0.001-bnrecompute/seed_0/checkpoints/last.ckpt"
    with_curve = tmp_path / "with"
    args = ["benchmark", f"--data={data}", f"--out={with_curve}", "--steps=8", "--seeds=1"]
    result = runner.invoke(cli.app, [*args, "--models=p_bn", "--curve=4", *BENCH])
    assert result.exit_code == 0, result.output
    curved = with_curve / "runs/p_bn/lr0.001-bnrecompute/seed_0/checkpoints/last.ckpt"
    a = torch.load(plain, weights_only=True)["state_dict"]
    b = torch.load(curved, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_results_carry_protocols_curves_tuning_and_costs(bench: Path) -> None:
    results = json.loads((bench / "results.json").read_text())
    keys = [p["key"] for p in results["protocols"]]
    assert keys == ["recipe-running", "recipe-recompute", "tuned-recompute"]
    assert results["plan"]["headline"] == "tuned-recompute"
    by_key = {p["key"]: {r["model"]: r for r in p["models"]} for p in results["protocols"]}
    # LALE has no BatchNorm: one set of runs serves both statistics.
    assert (
        by_key["recipe-running"]["p_lale"]["run_dirs"]
        == by_key["recipe-recompute"]["p_lale"]["run_dirs"]
    )
    assert (
        by_key["recipe-running"]["p_bn"]["run_dirs"]
        != by_key["recipe-recompute"]["p_bn"]["run_dirs"]
    )
    tuning = results["tuning"]["models"]
    for label, record in tuning.items():
        assert record["chosen"] in (1e-3, 3e-3)
        assert by_key["tuned-recompute"][label]["lr"] == record["chosen"]
        # The recipe's lr is the first half of its one-recipe run: read there, not retrained.
        assert "/runs/" in record["runs"]["0.001"]
    assert not (bench / "tune" / "p_lale" / "lr0.001").exists()
    assert (bench / "tune" / "p_lale" / "lr0.003" / "seed_0" / "test_metrics.json").is_file()
    row = by_key["tuned-recompute"]["p_bn"]
    assert len(row["curve"]["points"]) == 4
    assert row["curve"]["points"][-1]["test_f1"]["values"] == pytest.approx(
        row["macro_f1"]["values"], abs=1.0
    )
    assert set(results["bn_effect"]) == {"p_bn"}
    costs = results["costs"]
    assert costs["models"]["p_bn"]["bn_recompute_seconds"] > 0
    assert costs["models"]["p_lale"]["bn_recompute_seconds"] == 0
    assert set(costs["tuning_seconds"]) == {"p_lale", "p_bn"}
    (claim,) = results["claims"]
    assert claim["protocol"] == "tuned lr, BN recomputed"
    assert {"f1_gap", "paired", "welch", "bootstrap", "power", "curve", "verdict"} <= set(claim)
    assert claim["bootstrap"]["available"] and claim["bootstrap"]["images"] == 3
    for name in ("curves.png", "report.md", "tuning.json"):
        assert (bench / name).is_file()
    report = (bench / "report.md").read_text()
    assert "## Learning-rate tuning" in report and "## What each option cost" in report
    assert "[tuned lr, BN recomputed]" in (bench / "stdout.txt").read_text()


def test_a_second_call_trains_nothing(bench: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(bench, out)
    args = ["benchmark", f"--data={data}", f"--out={out}", "--steps=8", "--seeds=2"]
    args += ["--models=p_lale,p_bn", "--bn-stats=both", "--tune=lr", "--lr-grid=1e-3,3e-3"]
    result = runner.invoke(cli.app, [*args, *BENCH])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["runs"]["trained"] == 0


# -- statistics -------------------------------------------------------------------------------
def test_paired_gap_is_scipys_paired_t() -> None:
    a, b = [0.61, 0.64, 0.66], [0.55, 0.58, 0.52]
    gap = paired_gap(a, b)
    assert gap.test == PAIRED and gap.df == 2
    assert gap.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    d = np.subtract(a, b)
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    assert (gap.low, gap.high) == pytest.approx((d.mean() - half, d.mean() + half))
    with pytest.raises(ValueError, match="same seeds"):
        paired_gap([0.1, 0.2], [0.3])


def test_macro_f1_of_matrices_is_the_metrics_macro_f1() -> None:
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 50, (4, 4))
    cm[2] = 0
    cm[:, 2] = 0  # a class absent from truth and prediction is not averaged
    assert macro_f1(cm) == pytest.approx(scores_from_confusion(cm)["macro"]["f1"])


def test_bootstrap_interval_over_test_images() -> None:
    rng = np.random.default_rng(1)
    same = [rng.integers(0, 30, (20, 3, 3)) for _ in range(2)]
    zero = bootstrap_gap(same, same, resamples=200)
    assert (zero.value, zero.low, zero.high) == (0.0, 0.0, 0.0)
    eye = np.eye(3, dtype=int)[None] * 10
    good = [np.repeat(eye, 20, 0) + rng.integers(0, 2, (20, 3, 3)) for _ in range(2)]
    bad = [rng.integers(0, 10, (20, 3, 3)) for _ in range(2)]
    gap = bootstrap_gap(good, bad, resamples=300)
    assert gap.low is not None and gap.high is not None
    assert 0 < gap.low <= gap.value <= gap.high


def test_seeds_needed_matches_the_power_tables() -> None:
    # One-sample / paired t, two-sided 5 %, power 80 % (G*Power): d = 1 → 10, d = 0.5 → 34.
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(0.02, 0.04) == 34
    assert seeds_needed(0.02, None) is None and seeds_needed(0.02, 0.0) == 2


def test_majority_f1_by_hand() -> None:
    # 60 % one class: F1 = 2·0.6 / 1.6 = 0.75 for it, 0 for the two others present.
    assert majority_f1([60, 30, 10, 0]) == pytest.approx(0.75 / 3)


def _row(name: str, family: str, f1: list[float], curve: list[float] | None = None) -> Any:
    row: dict[str, Any] = {
        "model": name,
        "arch": name,
        "family": family,
        "macro_f1": mean_std(f1),
        "params": 1e6,
        "storage_bytes": 4e6,
        "gmacs": 1.0 if family == "lale" else 2.0,
        "throughput": 10.0,
    }
    if curve is not None:
        row["curve"] = {
            "points": [
                {
                    "fraction": 2.0 ** (i - len(curve) + 1),
                    "step": 10 * 2**i,
                    "test_f1": mean_std([v]),
                }
                for i, v in enumerate(curve)
            ]
        }
    return row


def test_claims_say_when_the_ranking_flips_along_the_budget() -> None:
    rows = [
        _row("lale_x", "lale", [0.60, 0.62, 0.61], [0.2, 0.4, 0.55, 0.61]),
        _row("rival", "baseline", [0.50, 0.52, 0.49], [0.3, 0.45, 0.5, 0.5]),
        _row("steady", "baseline", [0.40, 0.41, 0.42], [0.1, 0.2, 0.3, 0.41]),
    ]
    flip, steady = claims(rows, None, majority=0.1, protocol="p")
    assert flip["curve"]["ranking"] == "flips" and flip["curve"]["flip_at"] == 40
    assert steady["curve"]["ranking"] == "holds"
    assert flip["verdict"] == "ahead"
    line = claim_line(flip)
    assert line.startswith("lale_x vs rival [p]: ahead: F1 +10.7 pts [")
    assert "ranking flips: lale_x leads from 50% of the budget (step 40) on" in line
    assert "seeds" in line  # the power line


def test_a_rival_that_did_not_learn_is_named_not_compared() -> None:
    rows = [_row("lale_x", "lale", [0.60, 0.62]), _row("weak", "baseline", [0.12, 0.13])]
    (claim,) = claims(rows, None, majority=0.074, protocol="p")
    assert not learned(rows[1], 0.074) and learned(rows[0], 0.074)
    assert claim["verdict"] == "not compared" and not claim["compared"]
    assert "weak did not learn at this budget" in claim_line(claim)
    assert pareto(rows, 0.074)["models"] == ["lale_x"]


def test_protocol_changes_list_the_rivals_whose_verdict_moves() -> None:
    def claim(verdict: str) -> dict[str, Any]:
        return {"model": "a", "reference": "b", "verdict": verdict}

    lines = protocol_changes({"p1": [claim("behind")], "p2": [claim("no difference shown")]})
    assert lines == ["a vs b: behind under p1; no difference shown under p2"]
    assert protocol_changes({"p1": [claim("ahead")], "p2": [claim("ahead")]}) == []


def test_pareto_names_who_dominates() -> None:
    rows = [_row("lale_x", "lale", [0.5, 0.5]), _row("better", "frontier", [0.6, 0.6])]
    rows[1]["gmacs"] = 0.5
    verdict = pareto(rows, 0.01)["lale"]["lale_x"]
    assert verdict["gmacs"]["on_front"] is False and verdict["gmacs"]["dominated_by"] == ["better"]
    assert verdict["gmacs"]["f1_lead_pts"]["better"] == pytest.approx(10.0)
    lines = "\n".join(_pareto(pareto(rows, 0.01)))
    assert "lale_x is dominated on F1–GMACs by better (+10.0 pts)" in lines
    assert "no LALE model learned" in "\n".join(_pareto(pareto(rows, 0.5)))


# -- bad pairs --------------------------------------------------------------------------------
@pytest.fixture()
def bad_data(tmp_path: Path) -> Path:
    root = tmp_path / "bad"
    write_dataset(root, train=6, val=2, test=2, size=64, seed=1)
    mask = sorted((root / "train" / "masks").iterdir())[2]
    wide = np.zeros((64, 67, 3), dtype=np.uint8)
    Image.fromarray(wide).save(mask)
    return root


def test_bad_pairs_stop_training_by_default(models: None, bad_data: Path, tmp_path: Path) -> None:
    result = _train(bad_data, tmp_path / "run", "p_lale")
    assert result.exit_code == 2
    assert "mask is 64×67 but image" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_skip_bad_pairs_trains_evaluates_and_records_them(
    models: None, bad_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    result = _train(bad_data, run, "p_lale", "--skip-bad-pairs")
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if "bad image/mask pairs" in x]
    assert line.startswith("warning: train split: skipped 1 bad image/mask pairs: ")
    assert "64×67" in line
    record = json.loads((run / "skipped_pairs.json").read_text())
    assert [p["name"] for p in record["train"]] == [
        sorted(p.stem for p in (bad_data / "train" / "masks").iterdir())[2]
    ]
    assert json.loads((run / "config.json").read_text())["recipe"]["skip_bad_pairs"] is True
    shutil.copy(
        sorted((bad_data / "train" / "masks").iterdir())[2],
        sorted((bad_data / "test" / "masks").iterdir())[0],
    )
    args = ["evaluate", f"--run={run}", f"--data={bad_data}", "--json", str(tmp_path / "e.json")]
    assert runner.invoke(cli.app, args).exit_code == 2  # the default stays an error
    result = runner.invoke(cli.app, [*args, "--skip-bad-pairs"])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "e.json").read_text())
    assert scores["images"] == 1 and len(scores["skipped_pairs"]) == 1


def test_skip_bad_pairs_fails_when_nothing_is_left(
    models: None, bad_data: Path, tmp_path: Path
) -> None:
    for mask in (bad_data / "val" / "masks").iterdir():
        Image.fromarray(np.zeros((64, 65, 3), dtype=np.uint8)).save(mask)
    result = _train(bad_data, tmp_path / "run", "p_lale", "--skip-bad-pairs")
    assert result.exit_code == 2
    assert "all 2 pairs are bad" in result.stderr


def test_benchmark_takes_skip_bad_pairs(models: None, bad_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["benchmark", f"--data={bad_data}", f"--out={out}", "--steps=2", "--seeds=1"]
    args += ["--models=p_lale", "--curve=1", *BENCH]
    assert runner.invoke(cli.app, args).exit_code == 2
    result = runner.invoke(cli.app, [*args, "--skip-bad-pairs"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 bad image/mask pairs" in result.stdout
    assert list(out.glob("runs/p_lale/*/seed_0/skipped_pairs.json"))


def test_one_seed_claims_name_no_test_over_seeds() -> None:
    rows = [_row("lale_x", "lale", [0.60]), _row("rival", "baseline", [0.70])]
    (claim,) = claims(rows, None, majority=0.1, protocol="p")
    line = claim_line(claim)
    assert claim["verdict"] == "untested"  # no bootstrap data: nothing to decide on
    assert line.startswith("lale_x vs rival [p]: untested: F1 -10.0 pts (no test: one seed);")
    assert "over seeds" not in line
    claim["bootstrap"] = {"available": True, "low": -0.12, "high": -0.08}
    claim["verdict"] = "behind"
    line = claim_line(claim)
    assert line.startswith("lale_x vs rival [p]: behind (on the test-image bootstrap alone): F1")
    assert "over seeds" not in line and "test-image bootstrap [-12.0, -8.0]" in line
