"""``lale export``: a thin command over :mod:`lale.inference.onnx.export`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from lale.cli._common import add_command, stdout
from lale.errors import UnavailableError, UsageError
from lale.formatting import percent

if TYPE_CHECKING:
    from lale.inference.onnx.calibration import Calibration
    from lale.inference.onnx.quantize import Int8Result

Int8Kind = Literal["static", "dynamic"]
Method = Literal["minmax", "percentile", "entropy"]
_PARTS = ("stem", "head", "attention")  # lale.inference.onnx.static.EXCLUDE_CHOICES


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _dims(dims: tuple[int | str, ...]) -> str:
    return escape("[" + ", ".join(map(str, dims)) + "]")


def _require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UnavailableError(
            f"lale export needs {', '.join(missing)}: pip install onnx onnxruntime onnxscript"
        )


def export_command(
    run: Annotated[Path, typer.Option(help="Run directory (config.json + model.safetensors).")],
    out: Annotated[Path | None, typer.Option(help="ONNX file to write [RUN/model.onnx].")] = None,
    int8: Annotated[
        bool,
        typer.Option(
            "--int8",
            help="Also write an int8 copy (static QDQ calibrated on the run's training split "
            "unless --int8-kind dynamic); report its size and macro-F1 change.",
        ),
    ] = False,
    int8_kind: Annotated[
        Int8Kind | None,
        typer.Option(
            help="static: weights and activations int8, calibrated on training crops; dynamic: "
            "MatMul/Gemm weights only, no calibration data needed. Implies --int8 [static with "
            "--int8]."
        ),
    ] = None,
    int8_out: Annotated[
        Path | None, typer.Option(help="int8 file [OUT with .int8.onnx]; implies --int8.")
    ] = None,
    int8_conv: Annotated[
        bool,
        typer.Option(
            "--int8-conv",
            help="Dynamic int8 with convolutions too (smaller, slower); implies --int8-kind "
            "dynamic.",
        ),
    ] = False,
    calibration: Annotated[
        int, typer.Option(min=1, help="Static int8: training crops to calibrate on.")
    ] = 64,
    calibration_tile: Annotated[
        int,
        typer.Option(min=32, help="Static int8: side of the calibration crops (predict's --tile)."),
    ] = 256,
    calibration_method: Annotated[
        Method, typer.Option(help="Static int8: how activation ranges are set.")
    ] = "minmax",
    keep_fp32: Annotated[
        str,
        typer.Option(
            help="Static int8: parts left in fp32, comma-separated from stem (first conv), head "
            "(classifier), attention (Q·Kᵀ, softmax, ·V); 'none' for none."
        ),
    ] = "stem,head,attention",
    data: Annotated[
        Path | None,
        typer.Option(
            help="Dataset for int8 calibration (its train split) and the macro-F1 check "
            "(default: the run's recipe.data)."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --data to score.")] = "test",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 8,
    device: Annotated[
        str, typer.Option(help="onnxruntime device for scoring: cpu or cuda.")
    ] = "cpu",
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Largest accepted |ONNX - PyTorch| logit difference.")
    ] = 1e-4,
    clients: Annotated[
        bool,
        typer.Option(
            "--clients",
            help="Also write OUT with .clients.onnx for QGIS Deepness and GeoDeep: 8-bit "
            "samples / 255 in, softmax probabilities out, scaling inside the graph, a fixed "
            "tile (models trained on 8-bit imagery only).",
        ),
    ] = False,
    clients_tile: Annotated[
        int, typer.Option(min=32, help="Tile side of the .clients.onnx file's fixed input.")
    ] = 256,
) -> None:
    """Export a run to ONNX (dynamic batch, height, width), checked against PyTorch.

    Every file (the .onnx, its external weights, the int8 copy and its report .json) is
    written under a temporary name and renamed when complete and checked. Static int8 reads
    its calibration crops before the export starts, so missing training data stops it at once.
    """
    from lale.output_paths import check_output_file

    for target in (out, int8_out):
        if target is not None:
            check_output_file(target)
    if clients:  # before the export: a run it cannot serve stops at once
        from lale.inference.onnx.clients import check_clients
        from lale.run_config import CONFIG_NAME, load_config

        check_clients(load_config(run / CONFIG_NAME))
    kind: Int8Kind | None = (
        "dynamic" if int8_conv else int8_kind or ("static" if int8 or int8_out else None)
    )
    if int8_conv and int8_kind == "static":
        raise UsageError("--int8-conv is a dynamic quantisation; drop --int8-kind static")
    parts = _parts(keep_fp32)
    _require_onnx()
    from lale.inference.onnx.export import export_onnx

    console = stdout()

    def say(message: str) -> None:
        console.print(message, soft_wrap=True)

    calib = None
    if kind == "static":
        from lale.inference.onnx.calibration import calibration_patches

        calib = calibration_patches(run, calibration, data=data, tile=calibration_tile)
        say(f"calibration: {escape(calib.describe())}")

    result = export_onnx(run, out, tolerance=tolerance, say=lambda m: say(escape(m)))
    where = (
        "in one file"
        if result.external_data is None
        else f"with its weights in {escape(result.external_data.name)} (ship both)"
    )
    say(
        f"wrote {escape(str(result.path))}: {result.model}, {_mb(result.size_bytes)} {where}, "
        f"opset {result.opset}"
    )
    say(f"  input  image  {_dims(result.input_dims)} float32, normalised")
    say(f"  output logits {_dims(result.output_dims)} float32")
    say(f"parity with PyTorch (max |Δ logits| on N(0,1) inputs, tolerance {result.tolerance:g}):")
    for check in result.parity:
        shape = "×".join(map(str, check.shape))
        say(f"  {shape:<16} {check.max_abs_diff:.2e}")
    say(f"  worst {result.worst:.2e} < {result.tolerance:g}: ok")
    if clients:
        from lale.inference.onnx.clients import client_path, export_clients

        made = export_clients(run, client_path(result.path), tile=clients_tile)
        say(
            f"wrote {escape(str(made.path))}: for QGIS Deepness and GeoDeep, {made.tile}×"
            f"{made.tile} tiles of 8-bit samples / 255 → probabilities, {_mb(made.size_bytes)}; "
            f"max |Δ probability| vs PyTorch {made.max_abs_diff:.2e}"
        )
    if kind is None:
        return
    q = _quantize(result.path, int8_out, kind, int8_conv, calib, calibration_method, parts)
    say(
        f"int8 ({q.kind}): wrote {escape(str(q.path))}: {_mb(q.size_bytes)} "
        f"({q.size_ratio:.0%} of fp32), {'/'.join(q.ops)} weights; "
        f"argmax agrees with fp32 on {q.agreement:.1%} of the pixels of {q.agreement_on}"
    )
    if q.kind == "static":
        say(f"  kept in fp32: {escape(', '.join(parts) or 'nothing')}")
    _score(q, run, result.path, data, split, batch_size, device, say)


def _parts(text: str) -> tuple[str, ...]:
    parts = tuple(p.strip() for p in text.split(",") if p.strip() and p.strip() != "none")
    unknown = [p for p in parts if p not in _PARTS]
    if unknown:
        raise UsageError(
            f"--keep-fp32: unknown part {', '.join(unknown)}; choose from {', '.join(_PARTS)}"
        )
    return parts


def _quantize(
    fp32: Path,
    out: Path | None,
    kind: Int8Kind,
    conv: bool,
    calib: Calibration | None,
    method: Method,
    parts: tuple[str, ...],
) -> Int8Result:
    if kind == "dynamic" or calib is None:
        from lale.inference.onnx.quantize import quantize_int8

        return quantize_int8(fp32, out, conv=conv)
    from lale.inference.onnx.static import quantize_static_int8

    return quantize_static_int8(fp32, calib, out, method=method, exclude=parts)


def _score(
    q: Int8Result,
    run: Path,
    fp32: Path,
    data: Path | None,
    split: str,
    batch_size: int,
    device: str,
    say: Callable[[str], None],
) -> None:
    from lale.inference.onnx.io import DataUnavailableError
    from lale.inference.onnx.quantize import compare_f1, write_int8_report

    try:
        say("scoring the fp32 and int8 ONNX models…")
        change = compare_f1(
            run, fp32, q.path, data, split=split, batch_size=batch_size, device=device
        )
    except DataUnavailableError as err:
        say(f"int8 macro-F1 change not measured: {escape(str(err))}")
        change = None
    if change is not None:
        delta = "n/a" if change.delta is None else f"{change.delta * 100:+.2f} points"
        say(
            f"macro-F1 on {escape(str(change.data / change.split))} ({change.images} images): "
            f"fp32 {percent(change.fp32, 2, '%')}, int8 {percent(change.int8, 2, '%')} ({delta})"
        )
    report = write_int8_report(q, change)
    say(f"int8 report: {escape(str(report))}")


def register(app: typer.Typer) -> None:
    """Add ``lale export`` to the ``lale`` app."""
    add_command(app, "export", export_command)
