"""Static int8 quantisation (QDQ, per-channel weights) calibrated on the run's training crops.

Dynamic quantisation leaves activations in float and onnxruntime's CPU provider runs its
quantised convolutions slower than fp32 ones, so ``lale export --int8 dynamic`` keeps the
convolutions in fp32. Static quantisation fixes every activation's scale in advance from
calibration data (:mod:`lale.inference.onnx.calibration`): the graph then carries
``QuantizeLinear``/``DequantizeLinear`` pairs around every quantised operator (QDQ format),
which onnxruntime fuses into integer kernels (``QLinearConv``, ``QLinearMatMul``, …) when it
loads the file. Design notes and measurements: docs/design.md#int8-quantisation.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch

from lale.errors import UsageError, one_line
from lale.inference.onnx.io import EXAMPLE_BATCH, ExportError, set_metadata, write_model
from lale.inference.onnx.quantize import Int8Result, argmax_agreement, default_int8_path

if TYPE_CHECKING:
    import onnx

    from lale.inference.onnx.calibration import Calibration

__all__ = [
    "DEFAULT_EXCLUDE",
    "DEFAULT_METHOD",
    "DEFAULT_OP_TYPES",
    "EXCLUDE_CHOICES",
    "METHODS",
    "Method",
    "QuantFormatName",
    "excluded_nodes",
    "quantize_static_int8",
]

Method = Literal["minmax", "percentile", "entropy"]
"""How activation ranges are taken from the calibration outputs (onnxruntime's
``CalibrationMethod``): the extremes, the 99.999th percentile of ``|x|``, or the range that
keeps the KL divergence of the histogram smallest."""
METHODS: tuple[str, ...] = get_args(Method)
DEFAULT_METHOD: Method = "minmax"
"""The cheapest method; in ``benchmarks/int8.py`` the three change macro-F1 by under 0.1 point
from one another (benchmarks/results/int8_cpu.md)."""
EXCLUDE_CHOICES = ("stem", "head", "attention")
"""Parts that can stay in fp32: the first convolution (sees the raw normalised bands), the last
one (the classifier, whose logits are the output) and the attention core (the products of two
activations, ``Q·Kᵀ`` and ``softmax·V``, and the softmax between them)."""
DEFAULT_EXCLUDE: tuple[str, ...] = ("stem", "head", "attention")
"""Kept in fp32 by default: with them (and the element-wise operators) quantised too,
``benchmarks/int8.py`` measured 0.5–1.1 macro-F1 points lost and up to 11 % more time."""
DEFAULT_OP_TYPES: tuple[str, ...] = ("Conv", "MatMul", "Gemm")
"""Operators quantised by default: those with weights. Quantising the element-wise ones too
(``Add``, ``Mul``, …) saves no bytes and costs time in requantisation on the CPU."""
QuantFormatName = Literal["qdq", "qoperator"]
_ONNX_METHOD = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}


def _check_parts(parts: Sequence[str]) -> None:
    unknown = sorted(set(parts) - set(EXCLUDE_CHOICES))
    if unknown:
        raise UsageError(
            f"cannot keep {', '.join(unknown)} in fp32; choose from {', '.join(EXCLUDE_CHOICES)}"
        )


def excluded_nodes(proto: onnx.ModelProto, parts: Sequence[str]) -> list[str]:
    """Names of the nodes of ``parts`` (:data:`EXCLUDE_CHOICES`) in ``proto``'s graph.

    Raises:
        UsageError: An unknown part.
    """
    _check_parts(parts)
    convs = [n.name for n in proto.graph.node if n.op_type == "Conv"]
    names: list[str] = []
    if "stem" in parts and convs:
        names.append(convs[0])
    if "head" in parts and convs:
        names.append(convs[-1])
    if "attention" in parts:
        weights = {t.name for t in proto.graph.initializer}
        weights |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
        names += [
            n.name
            for n in proto.graph.node
            if n.op_type == "Softmax"
            or (n.op_type == "MatMul" and not any(i in weights for i in n.input))
        ]
    return names


class _Reader:
    """A ``CalibrationDataReader`` over :class:`Calibration` batches (rewindable)."""

    def __init__(self, calibration: Calibration, batch_size: int) -> None:
        self.calibration, self.batch_size = calibration, batch_size
        self._it: Iterator[dict[str, Any]] = calibration.batches(batch_size)

    def get_next(self) -> dict[str, Any] | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self.calibration.batches(self.batch_size)


def _quantised_ops(proto: onnx.ModelProto) -> tuple[str, ...]:
    """Operator types that take a dequantised weight (an int8 initializer) as an input."""
    weights = {t.name for t in proto.graph.initializer}
    dequantised = {
        n.output[0]
        for n in proto.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in weights
    }
    return tuple(sorted({n.op_type for n in proto.graph.node if dequantised.intersection(n.input)}))


def quantize_static_int8(
    fp32_path: str | Path,
    calibration: Calibration,
    out: str | Path | None = None,
    *,
    method: Method = DEFAULT_METHOD,
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
    op_types: Sequence[str] | None = DEFAULT_OP_TYPES,
    quant_format: QuantFormatName = "qdq",
    batch_size: int = 8,
) -> Int8Result:
    """Write a static int8 copy of an fp32 export, calibrated on ``calibration``.

    ``quant_pre_process`` (onnx shape inference and graph clean-up; onnxruntime's symbolic
    shape inference is skipped, it does not handle the dynamo graph's symbolic sizes), then
    ``quantize_static``: int8 per-channel symmetric weights, uint8 activations (the type
    onnxruntime's x86 integer kernels take), int32 biases, in QDQ format by default.

    Args:
        fp32_path: The fp32 export.
        calibration: Normalised crops of the run's training split.
        out: The int8 file (replaced atomically); default
            :func:`~lale.inference.onnx.quantize.default_int8_path` of ``fp32_path``.
        method: Calibration method (:data:`METHODS`).
        exclude: Parts kept in fp32 (:data:`EXCLUDE_CHOICES`).
        op_types: Operator types to quantise (``None``: every type onnxruntime can).
        quant_format: ``"qdq"`` (QuantizeLinear/DequantizeLinear pairs, fused by onnxruntime
            when it loads the file) or ``"qoperator"`` (``QLinearConv``, … in the file).
        batch_size: Crops per calibration forward pass.

    Raises:
        ExportError: onnxruntime's quantisation failed.
        UsageError: Unknown method or part.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise UsageError(f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}")
    _check_parts(exclude)
    src = Path(fp32_path)
    target = default_int8_path(src) if out is None else Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    props = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    reader = type("PatchReader", (_Reader, CalibrationDataReader), {})(calibration, batch_size)
    fmt = QuantFormat.QDQ if quant_format == "qdq" else QuantFormat.QOperator
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".lale-int8-") as tmp:
        pre, quant = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            kept = excluded_nodes(onnx.load(str(pre)), exclude)
            quantize_static(
                pre,
                quant,
                reader,
                quant_format=fmt,
                op_types_to_quantize=None if op_types is None else list(op_types),
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=kept,
                calibrate_method=getattr(CalibrationMethod, _ONNX_METHOD[method]),
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
            )
        except Exception as err:  # onnxruntime raises bare Exceptions here
            raise ExportError(f"int8 quantisation failed: {one_line(err)}") from err
        proto = onnx.load(str(quant))
        ops = _quantised_ops(proto)
        props["quantization"] = (
            f"int8 static {quant_format.upper()} (onnxruntime): per-channel symmetric int8 "
            f"weights of {'/'.join(ops)}, uint8 activations calibrated "
            f"({_ONNX_METHOD[method]}); kept in fp32: {', '.join(exclude) or 'nothing'}"
        )
        props["quantization_kind"] = "static"
        props["quantization_calibration"] = calibration.describe()
        props["quantization_fp32_bytes"] = str(src.stat().st_size)
        set_metadata(proto, props)
        write_model(proto, target)
    channels = json.loads(props.get("in_channels", "3"))
    crops = torch.from_numpy(calibration.patches[:EXAMPLE_BATCH])
    return Int8Result(
        path=target,
        size_bytes=target.stat().st_size,
        fp32_size_bytes=src.stat().st_size,
        ops=ops,
        agreement=argmax_agreement(src, target, int(channels), 0, crops),
        agreement_on=f"{crops.shape[0]} calibration crops",
        kind="static",
        calibration=calibration.describe(),
        kept_fp32=tuple(kept),
        metadata=props,
    )
