"""Tests for lale.profiling: MAC counting, storage, timing, ratios and reports."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from safetensors.torch import save_model
from torch import nn

from lale.models import registry
from lale.models.registry import UnknownModelError
from lale.profiling import (
    DeviceUnavailableError,
    ModelProfile,
    ProfilingError,
    TimingConfig,
    collect_environment,
    compute_ratios,
    count_flops,
    count_macs,
    count_parameters,
    meta_weights,
    models_table,
    profile_markdown,
    profile_models,
    profile_table,
    ratio_summary,
    resolve_device,
    storage_bytes,
    summarize_models,
    time_model,
    write_json,
)

# --------------------------------------------------------------------------- tiny models


class TinySeg(nn.Module):
    """A minimal segmentation net with attention: conv stem /4, one attention layer, 1×1 head."""

    def __init__(self, num_classes: int = 7, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.heads = 2
        self.stem = nn.Conv2d(in_channels, width, 4, stride=4)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.stem(x)
        b, c, h, w = f.shape
        tokens = f.flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).reshape(b, h * w, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        f = f + self.proj(a).transpose(1, 2).reshape(b, c, h, w)
        return F.interpolate(self.head(f), size=x.shape[-2:], mode="bilinear")


class Broken(nn.Module):
    def __init__(self, num_classes: int = 7, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model always fails")


def _build_tiny(num_classes: int = 7, in_channels: int = 3, width: int = 16) -> nn.Module:
    return TinySeg(num_classes, in_channels, width)


def _build_broken(num_classes: int = 7, in_channels: int = 3) -> nn.Module:
    return Broken(num_classes, in_channels)


@pytest.fixture(autouse=True)
def tiny_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register tiny models in a private copy of the registry (restored afterwards)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    tiny = {
        "tiny_net": dict(family="lale", builder=_build_tiny, width=8),
        "tiny_ref": dict(family="baseline", builder=_build_tiny, width=32),
        "tiny_broken": dict(family="baseline", builder=_build_broken),
    }
    for name, spec in tiny.items():
        if name not in registry._REGISTRY:
            spec = dict(spec)
            registry.register_model(
                name,
                spec.pop("builder"),
                family=spec.pop("family"),
                description=f"test model {name}",
                **spec,
            )
    yield


FAST = TimingConfig(size=32, batch_size=2, warmup=1, repeats=1)

# --------------------------------------------------------------------------- MACs


class AttnConvBlock(nn.Module):
    """Conv2d → tokens → Linear qkv → SDPA → Linear proj, plus a depthwise conv."""

    def __init__(self, cin: int, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.conv = nn.Conv2d(cin, dim, 3, stride=2, padding=1)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dw = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        b, c, h, w = f.shape
        t = f.flatten(2).transpose(1, 2)  # B×N×C
        q, k, v = self.qkv(t).reshape(b, h * w, 3, self.heads, c // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # B×h×N×dh
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, h * w, c)
        f = self.proj(a).transpose(1, 2).reshape(b, c, h, w)
        return self.dw(f)


def _hand_macs(cin: int, dim: int, heads: int, size: int) -> int:
    hout = wout = size // 2  # 3×3, stride 2, padding 1
    n = hout * wout
    dh = dim // heads
    conv = hout * wout * dim * cin * 3 * 3
    qkv = n * dim * 3 * dim
    scores = heads * n * n * dh
    attn_v = heads * n * n * dh
    proj = n * dim * dim
    dw = hout * wout * dim * (dim // dim) * 5 * 5  # groups = dim
    return conv + qkv + scores + attn_v + proj + dw


@pytest.mark.parametrize("try_meta", [True, False])
def test_count_macs_matches_hand_count_including_attention(try_meta: bool) -> None:
    cin, dim, heads, size = 3, 32, 4, 16
    block = AttnConvBlock(cin, dim, heads)
    expected = _hand_macs(cin, dim, heads, size)
    assert count_macs(block, size, cin, try_meta=try_meta) == expected
    assert count_flops(block, (size, size), cin, try_meta=try_meta) == 2 * expected
    # The attention matmuls are a real share of the total here: make sure they are in.
    n = (size // 2) ** 2
    assert expected - 2 * heads * n * n * (dim // heads) > 0


class ValueDependent(nn.Module):
    """Reads a tensor value in forward, which cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x.mean(dim=(2, 3)))
        return y * 2 if y.sum().item() > 1e9 else y


def test_count_macs_falls_back_when_meta_fails() -> None:
    model = ValueDependent()
    assert count_macs(model, 4, in_channels=8) == 8 * 4


def test_count_macs_restores_training_mode() -> None:
    model = TinySeg()
    model.train()
    count_macs(model, 32)
    assert model.training
    model.eval()
    count_macs(model, 32)
    assert not model.training


class LinspaceBuilt(nn.Module):
    """Computes plain numbers with tensors at construction (breaks ``torch.device("meta")``)."""

    def __init__(self) -> None:
        super().__init__()
        rates = torch.linspace(0, 0.1, 3).tolist()
        self.blocks = nn.ModuleList(nn.Linear(8, 8) for _ in rates)
        self.out = nn.Linear(8, 8, bias=False)
        self.out.weight = self.blocks[0].weight  # tied
        self.register_buffer("index", torch.arange(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.mean(dim=(2, 3))[:, self.index]
        for block in self.blocks:
            t = block(t)
        return self.out(t)


def test_meta_weights_builds_counts_without_real_weights() -> None:
    real = LinspaceBuilt()
    with meta_weights():
        meta = LinspaceBuilt()
    assert all(p.is_meta for p in meta.parameters()) and meta.index.is_meta
    assert meta.out.weight is meta.blocks[0].weight
    assert count_parameters(meta) == count_parameters(real) == 3 * 72
    assert count_macs(meta, 4, in_channels=8) == count_macs(real, 4, in_channels=8) == 4 * 64
    assert not LinspaceBuilt().out.weight.is_meta  # the hooks are gone afterwards


# --------------------------------------------------------------------------- params, storage


def test_storage_is_safetensors_file_size(tmp_path: Path) -> None:
    model = TinySeg(width=32)
    path = tmp_path / "m.safetensors"
    save_model(model, str(path))
    n = count_parameters(model)
    size = storage_bytes(model)
    assert size == path.stat().st_size
    assert 4 * n <= size <= 4 * n + 4096  # header only on top of 4 bytes per parameter


def test_storage_and_params_count_tied_weights_once() -> None:
    model = nn.Sequential(nn.Linear(16, 16, bias=False), nn.ReLU(), nn.Linear(16, 16, bias=False))
    model[2].weight = model[0].weight
    assert count_parameters(model) == 256
    assert 4 * 256 <= storage_bytes(model) <= 4 * 256 + 1024


def test_storage_is_fp32_size_for_bf16_model() -> None:
    model = TinySeg()
    fp32 = storage_bytes(model)
    assert storage_bytes(model.to(torch.bfloat16)) == fp32
    assert next(model.parameters()).dtype == torch.bfloat16  # the caller's model is untouched


# --------------------------------------------------------------------------- timing


@pytest.mark.parametrize(
    "config",
    [FAST, TimingConfig(size=32, batch_size=2, warmup=0, repeats=2, channels_last=True)],
    ids=["default", "channels_last"],
)
def test_time_model_fields_positive(config: TimingConfig) -> None:
    result = time_model(TinySeg(), config)
    assert result.throughput > 0
    assert result.latency_ms is not None and result.latency_ms > 0
    assert len(result.batch_times_s) == config.repeats
    assert len(result.latency_times_s) == config.repeats


def test_time_model_bf16_autocast_without_latency() -> None:
    config = TimingConfig(size=32, batch_size=2, warmup=0, repeats=1, dtype="bf16", latency=False)
    result = time_model(TinySeg(), config)
    assert result.throughput > 0 and result.latency_ms is None


@pytest.mark.parametrize(
    "kwargs", [dict(batch_size=0), dict(repeats=0), dict(warmup=-1), dict(dtype="fp16")]
)
def test_timing_config_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TimingConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_unavailable_is_a_clear_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available") as info:
        resolve_device("cuda")
    assert "\n" not in str(info.value)


def test_environment_records_context() -> None:
    env = collect_environment("cpu")
    assert env.device and env.device_type == "cpu" and env.gpu is None
    assert env.torch_threads == torch.get_num_threads() and env.cpu_count >= 1
    for key in ("python", "torch", "lale", "smp", "timm", "numpy"):
        assert key in env.versions
    assert env.versions["torch"] == torch.__version__
    assert env.date.endswith("+00:00")


# --------------------------------------------------------------------------- ratios, runs


def _profile(name: str, **kw: float) -> ModelProfile:
    values: dict[str, float | None] = dict(
        params=1, storage_bytes=1, macs=1, throughput=1.0, latency_ms=1.0
    )
    values.update(kw)
    return ModelProfile(name=name, family="", **values)  # type: ignore[arg-type]


def test_compute_ratios_from_synthetic_numbers() -> None:
    ref = _profile(
        "ref", params=8e6, storage_bytes=32e6, macs=17e9, throughput=100.0, latency_ms=30.0
    )
    model = _profile(
        "m", params=2_000_000, storage_bytes=4_000_000, macs=1e9, throughput=180.0, latency_ms=10.0
    )
    r = compute_ratios(model, ref)
    assert r.reference == "ref"
    assert r.params == pytest.approx(4.0)
    assert r.storage == pytest.approx(8.0)
    assert r.gmacs == pytest.approx(17.0)
    assert r.throughput == pytest.approx(1.8)
    assert r.latency == pytest.approx(3.0)
    same = compute_ratios(ref, ref)
    assert (same.params, same.storage, same.gmacs, same.throughput, same.latency) == (1, 1, 1, 1, 1)


def test_compute_ratios_undefined_values_are_none() -> None:
    r = compute_ratios(_profile("m", macs=0, latency_ms=None), _profile("ref"))
    assert r.gmacs is None and r.latency is None and r.params == 1


def test_profile_models_adds_reference_and_writes_json(tmp_path: Path) -> None:
    run = profile_models(["tiny_net", "tiny_net"], FAST, reference="tiny_ref", progress=False)
    assert [p.name for p in run.profiles] == ["tiny_ref", "tiny_net"]
    net, ref = run.get("tiny_net"), run.get("tiny_ref")
    assert net.family == "lale" and ref.family == "baseline"
    assert net.params == count_parameters(TinySeg(width=8))
    assert net.macs == count_macs(TinySeg(width=8), 32)
    ratios = run.ratios()
    assert ratios["tiny_ref"].params == 1.0
    assert ratios["tiny_net"].params == pytest.approx(ref.params / net.params)
    assert ratios["tiny_net"].throughput == pytest.approx(net.throughput / ref.throughput)

    data = json.loads(write_json(run, tmp_path / "sub" / "run.json").read_text())
    assert data["reference"] == "tiny_ref"
    assert data["settings"]["batch_size"] == 2 and data["settings"]["num_classes"] == 7
    assert data["environment"]["torch_threads"] >= 1
    entry = data["models"][1]
    assert entry["name"] == "tiny_net"
    assert math.isclose(entry["gmacs"], net.macs / 1e9)
    assert set(entry["ratios"]) == {"params", "storage", "gmacs", "throughput", "latency"}
    assert len(entry["batch_times_s"]) == len(entry["latency_times_s"]) == FAST.repeats


def test_profile_models_validates_names_before_measuring() -> None:
    with pytest.raises(UnknownModelError, match="tiny_net"):
        profile_models(["tiny_net", "no_such_model"], FAST, reference=None, progress=False)


def test_profile_models_errors_raise_or_skip() -> None:
    with pytest.raises(ProfilingError, match="tiny_broken"):
        profile_models(["tiny_broken"], FAST, reference="tiny_net", progress=False)
    run = profile_models(
        ["tiny_broken"], FAST, reference="tiny_net", on_error="skip", progress=False
    )
    assert [p.name for p in run.profiles] == ["tiny_net"]
    assert "always fails" in run.failures["tiny_broken"]
    assert "tiny_broken" in profile_markdown(run)


def test_tables_render() -> None:
    run = profile_models(["tiny_net"], FAST, reference="tiny_ref", progress=False)
    console = Console(record=True, width=250)
    console.print(profile_table(run))
    text = console.export_text()
    assert "tiny_net" in text and "throughput ×" in text and "1.00×" in text
    md = profile_markdown(run)
    assert "| model | family |" in md and "`tiny_ref`" in md and "threads" in md
    assert ratio_summary(run, "tiny_net").startswith("tiny_net vs tiny_ref: ")


def test_summarize_models_matches_real_counts() -> None:
    summaries = summarize_models(["tiny_net", "tiny_broken"], size=32)
    net, broken = summaries
    assert net.params == count_parameters(TinySeg(width=8))
    assert net.macs == count_macs(TinySeg(width=8), 32)
    assert net.error is None and net.family == "lale"
    assert broken.params is None and broken.error is not None and "always fails" in broken.error
    console = Console(record=True, width=200)
    console.print(models_table(summaries))
    assert "tiny_net" in console.export_text()


def test_time_models_interleaves_rounds() -> None:
    from lale.profiling.timing import time_models

    calls: list[str] = []

    class Recorder(nn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(self.name)
            return self.conv(x)

    config = TimingConfig(size=16, batch_size=2, warmup=1, repeats=3, latency=False)
    results = time_models({"a": Recorder("a"), "b": Recorder("b")}, config)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # warm-up each, then one pass of each per round
    assert all(len(r.batch_times_s) == 3 and r.throughput > 0 for r in results.values())
