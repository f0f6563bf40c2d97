"""``lale export``: a thin command over :mod:`lale.inference.onnx.export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lale.cli._common import add_command, stdout
from lale.errors import UnavailableError
from lale.formatting import percent


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
            "--int8", help="Also write a dynamically quantised int8 copy; report size and F1."
        ),
    ] = False,
    int8_out: Annotated[
        Path | None, typer.Option(help="int8 file [OUT with .int8.onnx]; implies --int8.")
    ] = None,
    int8_conv: Annotated[
        bool,
        typer.Option(
            "--int8-conv", help="Quantise convolutions too (smaller, slower); implies --int8."
        ),
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(help="Dataset for the int8 macro-F1 check (default: the run's recipe.data)."),
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --data to score.")] = "test",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 8,
    device: Annotated[
        str, typer.Option(help="onnxruntime device for scoring: cpu or cuda.")
    ] = "cpu",
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="Largest accepted |ONNX - PyTorch| logit difference.")
    ] = 1e-4,
) -> None:
    """Export a run to ONNX (dynamic batch, height, width), checked against PyTorch.

    Every file (the .onnx, its external weights, the int8 copy) is written under a temporary
    name and renamed when complete and checked.
    """
    from lale.output_paths import check_output_file

    for target in (out, int8_out):
        if target is not None:
            check_output_file(target)
    _require_onnx()
    from lale.inference.onnx.export import export_onnx
    from lale.inference.onnx.io import DataUnavailableError
    from lale.inference.onnx.quantize import compare_f1, quantize_int8

    console = stdout()

    def say(message: str) -> None:
        console.print(message, soft_wrap=True)

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
    if not (int8 or int8_out is not None or int8_conv):
        return
    q = quantize_int8(result.path, int8_out, conv=int8_conv)
    say(
        f"int8: wrote {escape(str(q.path))}: {_mb(q.size_bytes)} "
        f"({q.size_bytes / q.fp32_size_bytes:.0%} of fp32), {'/'.join(q.ops)} weights; "
        f"argmax agrees with fp32 on {q.agreement:.1%} of a random input's pixels"
    )
    try:
        say("scoring the fp32 and int8 ONNX models…")
        change = compare_f1(
            run, result.path, q.path, data, split=split, batch_size=batch_size, device=device
        )
    except DataUnavailableError as err:
        say(f"int8 macro-F1 change not measured: {escape(str(err))}")
        return
    delta = "n/a" if change.delta is None else f"{change.delta * 100:+.2f} points"
    say(
        f"macro-F1 on {escape(str(change.data / change.split))} ({change.images} images): "
        f"fp32 {percent(change.fp32, 2, '%')}, int8 {percent(change.int8, 2, '%')} ({delta})"
    )


def register(app: typer.Typer) -> None:
    """Add ``lale export`` to the ``lale`` app."""
    add_command(app, "export", export_command)
