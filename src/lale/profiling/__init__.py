"""Efficiency measurements: parameters, storage, GMACs, throughput and latency.

Params = all parameters; storage = size of the fp32 safetensors file; GMACs =
``FlopCounterMode`` FLOPs ÷ 2 for one ``1×C×H×W`` input (attention included); throughput =
images/s of the forward pass in ``inference_mode`` at a fixed batch after warm-up, median of
repeats; latency = the same at batch 1. Models are compared within one run, as ratios
(docs/design.md#efficiency).
"""

from lale.profiling.counting import (
    count_flops,
    count_macs,
    count_parameters,
    meta_weights,
    storage_bytes,
)
from lale.profiling.environment import (
    DeviceUnavailableError,
    EnvironmentInfo,
    collect_environment,
    lale_version,
    resolve_device,
)
from lale.profiling.report import (
    DEFAULT_REFERENCE,
    ModelProfile,
    ProfileRun,
    ProfilingError,
    Ratios,
    compute_ratios,
    profile_models,
    profile_module,
    write_json,
)
from lale.profiling.summary import ModelSummary, summarize_model, summarize_models
from lale.profiling.tables import models_table, profile_markdown, profile_table, ratio_summary
from lale.profiling.timing import DType, TimingConfig, TimingResult, time_model

__all__ = [
    "DEFAULT_REFERENCE",
    "DType",
    "DeviceUnavailableError",
    "EnvironmentInfo",
    "ModelProfile",
    "ModelSummary",
    "ProfileRun",
    "ProfilingError",
    "Ratios",
    "TimingConfig",
    "TimingResult",
    "collect_environment",
    "compute_ratios",
    "count_flops",
    "count_macs",
    "count_parameters",
    "lale_version",
    "meta_weights",
    "models_table",
    "profile_markdown",
    "profile_models",
    "profile_module",
    "profile_table",
    "ratio_summary",
    "resolve_device",
    "storage_bytes",
    "summarize_model",
    "summarize_models",
    "time_model",
    "write_json",
]
