"""int8 quantisation of an ONNX export, and what it costs in macro-F1.

:func:`quantize_int8` is onnxruntime's dynamic quantisation (weights only, activations
quantised on the fly); static QDQ quantisation calibrated on the run's training crops is in
:mod:`lale.inference.onnx.static`. Both give an :class:`Int8Result`; :func:`compare_f1` scores
the fp32 and int8 files on a split and :func:`write_int8_report` records both beside the file.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lale.atomic import write_json_atomic
from lale.errors import one_line
from lale.inference.onnx.backend import OnnxBackend
from lale.inference.onnx.io import (
    EXAMPLE_BATCH,
    DataUnavailableError,
    ExportError,
    keep_torchvision_importable,
    set_metadata,
    write_model,
)

__all__ = [
    "F1Change",
    "Int8Result",
    "argmax_agreement",
    "compare_f1",
    "default_int8_path",
    "int8_report_path",
    "quantize_int8",
    "write_int8_report",
]


@dataclass(frozen=True)
class Int8Result:
    """What :func:`quantize_int8` wrote.

    Attributes:
        path: The int8 ``.onnx`` file.
        size_bytes: Its size.
        fp32_size_bytes: Size of the fp32 file it was made from.
        ops: Operator types whose weights were quantised.
        agreement: Share of pixels whose argmax matches the fp32 model's on ``agreement_on``.
        kind: ``"dynamic"`` or ``"static"``.
        calibration: The calibration set (static), in words.
        kept_fp32: Graph nodes left in fp32 (static).
        metadata: The ``metadata_props`` written.
        agreement_on: The input of ``agreement``, in words.
    """

    path: Path
    size_bytes: int
    fp32_size_bytes: int
    ops: tuple[str, ...]
    agreement: float
    kind: str = "dynamic"
    calibration: str | None = None
    kept_fp32: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    agreement_on: str = "a random N(0, 1) input"

    @property
    def size_ratio(self) -> float:
        """int8 size over fp32 size."""
        return self.size_bytes / self.fp32_size_bytes


@dataclass(frozen=True)
class F1Change:
    """Macro-F1 of the fp32 and int8 ONNX models on one dataset split.

    Attributes:
        data: Dataset root.
        split: Split scored.
        images: Images in the split.
        fp32: Macro-F1 of the fp32 model (``None`` if no class was present).
        int8: Macro-F1 of the int8 model.
        fp32_scores: Full scores of the fp32 model (``evaluate_run`` layout).
        int8_scores: Full scores of the int8 model.
    """

    data: Path
    split: str
    images: int
    fp32: float | None
    int8: float | None
    fp32_scores: dict[str, Any]
    int8_scores: dict[str, Any]

    @property
    def delta(self) -> float | None:
        """``int8 - fp32`` (negative: quantisation lost accuracy)."""
        return None if self.fp32 is None or self.int8 is None else self.int8 - self.fp32


def default_int8_path(fp32_path: str | Path) -> Path:
    """Default int8 file beside an fp32 export: ``model.onnx`` → ``model.int8.onnx``."""
    path = Path(fp32_path)
    return path.with_name(f"{path.stem}.int8{path.suffix or '.onnx'}")


def int8_report_path(int8_path: str | Path) -> Path:
    """The JSON report beside an int8 file: ``model.int8.onnx`` → ``model.int8.json``."""
    return Path(int8_path).with_suffix(".json")


def argmax_agreement(
    fp32: Path, int8: Path, channels: int, seed: int, x: torch.Tensor | None = None
) -> float:
    """Share of pixels whose argmax agrees between two files, on ``x`` (default: a seeded
    N(0, 1) input)."""
    if x is None:
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(EXAMPLE_BATCH, channels, 250, 198, generator=generator)
    a = OnnxBackend(fp32)(x).argmax(1)
    b = OnnxBackend(int8)(x).argmax(1)
    return float((a == b).float().mean())


def quantize_int8(
    fp32_path: str | Path,
    out: str | Path | None = None,
    *,
    conv: bool = False,
    seed: int = 0,
) -> Int8Result:
    """Dynamic int8 quantisation of an fp32 export through onnxruntime.

    ``quant_pre_process`` (onnx shape inference and graph clean-up; onnxruntime's symbolic
    shape inference is skipped, it does not handle the dynamo graph's symbolic sizes) then
    ``quantize_dynamic`` with per-channel int8 weights. By default only ``MatMul``/``Gemm``
    weights are quantised — the transformer and decoder projections, three quarters of
    ``lale_t``'s weights — since dynamically quantised convolutions run slower than fp32 ones
    in onnxruntime's CPU provider and cost more accuracy.

    Args:
        fp32_path: The fp32 export.
        out: The int8 file; default :func:`default_int8_path` of ``fp32_path``.
        conv: Quantise ``Conv`` weights too (smaller file, slower and less accurate).
        seed: Seed of the random input for the argmax agreement.

    Raises:
        ExportError: onnxruntime's quantisation failed.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = Path(fp32_path)
    target = default_int8_path(src) if out is None else Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    ops = ("MatMul", "Gemm", "Conv") if conv else ("MatMul", "Gemm")
    props = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    props["quantization"] = f"int8 dynamic (onnxruntime), per-channel weights of {'/'.join(ops)}"
    props["quantization_kind"] = "dynamic"
    props["quantization_fp32_bytes"] = str(src.stat().st_size)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".lale-int8-") as tmp:
        pre, quant = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_dynamic(
                pre,
                quant,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(ops),
                per_channel=True,
            )
        except Exception as err:  # onnxruntime raises bare Exceptions here
            raise ExportError(f"int8 quantisation failed: {one_line(err)}") from err
        proto = onnx.load(str(quant))
        set_metadata(proto, props)
        write_model(proto, target)
    channels = json.loads(props.get("in_channels", "3"))
    return Int8Result(
        path=target,
        size_bytes=target.stat().st_size,
        fp32_size_bytes=src.stat().st_size,
        ops=ops,
        agreement=argmax_agreement(src, target, int(channels), seed),
        kind="dynamic",
        metadata=props,
    )


def _macro_f1(scores: dict[str, Any]) -> float | None:
    value = scores.get("macro", {}).get("f1")
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def compare_f1(
    run_dir: str | Path,
    fp32_path: str | Path,
    int8_path: str | Path,
    data: str | Path | None = None,
    *,
    split: str = "test",
    batch_size: int = 8,
    device: str = "cpu",
    threads: int | None = None,
) -> F1Change:
    """Macro-F1 of the fp32 and int8 ONNX models on a split of the run's dataset.

    Args:
        run_dir: The run (its config supplies schema and normalisation).
        fp32_path: The fp32 export.
        int8_path: The int8 export.
        data: Dataset root; default the one the run was trained on (``recipe.data``).
        split: Split folder to score.
        batch_size: Images per forward pass.
        device: ``cpu`` or ``cuda`` (onnxruntime's CUDA provider if installed).
        threads: onnxruntime intra-op threads.

    Raises:
        DataUnavailableError: No dataset given or recorded, or its split folder is missing.
        RunError, DataError: Bad run or dataset files.
    """
    keep_torchvision_importable()
    from lale.runs import CONFIG_NAME, load_config
    from lale.training.evaluate import evaluate_run

    run_dir = Path(run_dir)
    if data is None:
        recorded = load_config(run_dir / CONFIG_NAME).recipe.data
        if not recorded:
            raise DataUnavailableError(
                "the run records no dataset (recipe.data); give one with --data"
            )
        data = recorded
    root = Path(data)
    if not (root / split).is_dir():
        raise DataUnavailableError(f"{root / split}: dataset split not found on this machine")
    scores = {
        name: evaluate_run(
            run_dir,
            root,
            split,
            batch_size=batch_size,
            device=device,
            forward=OnnxBackend(path, device=device, threads=threads),
        )
        for name, path in (("fp32", fp32_path), ("int8", int8_path))
    }
    return F1Change(
        data=root,
        split=split,
        images=int(scores["fp32"]["images"]),
        fp32=_macro_f1(scores["fp32"]),
        int8=_macro_f1(scores["int8"]),
        fp32_scores=scores["fp32"],
        int8_scores=scores["int8"],
    )


def write_int8_report(result: Int8Result, change: F1Change | None) -> Path:
    """Write :func:`int8_report_path` of ``result.path``: what was quantised, how, the sizes,
    and the macro-F1 change (``null`` where it was not measured)."""
    record: dict[str, Any] = {
        "int8": result.path.name,
        "kind": result.kind,
        "quantization": result.metadata.get("quantization"),
        "calibration": result.calibration,
        "kept_fp32": list(result.kept_fp32),
        "ops": list(result.ops),
        "size_bytes": result.size_bytes,
        "fp32_size_bytes": result.fp32_size_bytes,
        "size_ratio": result.size_ratio,
        "argmax_agreement": result.agreement,
        "argmax_agreement_on": result.agreement_on,
        "f1": None,
    }
    if change is not None:
        record["f1"] = {
            "data": str(change.data),
            "split": change.split,
            "images": change.images,
            "fp32_macro_f1": change.fp32,
            "int8_macro_f1": change.int8,
            "delta_points": None if change.delta is None else change.delta * 100,
        }
    target = int8_report_path(result.path)
    write_json_atomic(target, record)
    return target
