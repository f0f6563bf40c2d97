"""Tests of ``lale export``: ONNX through the dynamo exporter, int8, metadata, the backend.

One freshly built (untrained) ``lale_t`` run is exported once through the command line with
``--int8`` (``exported``, ~30 s on a CPU: the dynamo exporter reasons about symbolic shapes):
static int8 calibrated on two 64² crops of the run's tiny synthetic training split. Every other
test only reads those files, or replaces the exporter's output with them. The run records a tiny
synthetic test split, so the macro-F1 comparison runs too.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from lale import run_layout
from lale.cli.export import register
from lale.data.schema.aras import ARAS400K
from lale.data.synthetic import write_dataset
from lale.inference.onnx import export as export_module
from lale.inference.onnx import io as onnx_io
from lale.inference.onnx.backend import OnnxBackend
from lale.inference.onnx.calibration import calibration_patches
from lale.inference.onnx.deepness import DEEPNESS_KEYS
from lale.inference.onnx.export import check_dynamic, export_onnx
from lale.inference.onnx.io import (
    INPUT_NAME,
    OUTPUT_NAME,
    DataUnavailableError,
    ExportError,
    graph_dims,
    read_metadata,
)
from lale.inference.onnx.quantize import (
    compare_f1,
    default_int8_path,
    int8_report_path,
    quantize_int8,
)
from lale.models.registry import create_model
from lale.runs import RunConfig, load_run, save_run
from lale.training.evaluate import evaluate_run

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # the dynamo exporter's ONNX builder

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated"),
    pytest.mark.slow,  # one ~30 s export shared by the module
]

runner = CliRunner()
app = typer.Typer(pretty_exceptions_enable=False)


@app.callback()
def _main() -> None:
    """Test app holding only ``export``."""


register(app)


@dataclass(frozen=True)
class Exported:
    run: Path
    fp32: Path
    int8: Path
    output: str


def _make_run(run_dir: Path, data: Path | None) -> Path:
    torch.manual_seed(0)
    recipe = {"data": str(data)} if data is not None else None
    config = RunConfig.from_schema("lale_t", ARAS400K, recipe=recipe)
    return save_run(run_dir, create_model("lale_t"), config)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    root = tmp_path_factory.mktemp("export")
    data = root / "data"
    write_dataset(data, train=2, val=0, test=2, size=64, seed=0)
    run = _make_run(root / "run", data)
    out = root / "shipped" / "model.onnx"
    result = runner.invoke(
        app,
        [
            "export",
            f"--run={run}",
            f"--out={out}",
            "--int8",
            "--calibration=2",
            "--calibration-tile=64",
        ],
    )
    assert result.exit_code == 0, result.output
    return Exported(run, out, default_int8_path(out), result.output)


def _random(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_cli_reports_parity_sizes_and_f1(exported: Exported) -> None:
    out = exported.output
    assert "in one file" in out and "[batch, 3, height, width]" in out
    worst = next(line for line in out.splitlines() if line.strip().startswith("worst"))
    assert float(worst.split()[1]) < 1e-4
    assert f"int8 (static): wrote {exported.int8}" in out
    assert "calibration: 2 random 64×64 crops (seed 0) from the 2 images of" in out
    assert "macro-F1 on" in out and "(2 images)" in out and "points)" in out


def test_graph_has_symbolic_batch_height_and_width(exported: Exported) -> None:
    dims = graph_dims(exported.fp32)
    assert dims[INPUT_NAME] == ("batch", 3, "height", "width")
    assert dims[OUTPUT_NAME] == ("batch", 7, "height", "width")
    # Plain onnxruntime (no lale backend) at another batch and odd sides than the example's.
    session = ort.InferenceSession(str(exported.fp32), providers=["CPUExecutionProvider"])
    for shape in [(2, 3, 250, 198), (3, 3, 64, 97)]:
        (logits,) = session.run(None, {INPUT_NAME: _random(*shape).numpy()})
        assert logits.shape == (shape[0], 7, *shape[2:])


def test_fixed_axes_are_refused() -> None:
    with pytest.raises(ExportError, match="batch=1"):
        check_dynamic({INPUT_NAME: (1, 3, "h", "w"), OUTPUT_NAME: (1, 7, "h", "w")})


def test_failed_checks_write_nothing(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The library path, with the exporter's output replaced by the shared export (no 30 s)."""
    run = Path(shutil.copytree(exported.run, tmp_path / "run"))
    fixed_batch = False

    def reuse(model: Any, example: Any, min_side: int) -> Any:
        proto = onnx.load(str(exported.fp32))
        if fixed_batch:
            proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
        return proto

    monkeypatch.setattr(export_module, "_export_proto", reuse)
    with pytest.raises(ExportError, match="parity check failed"):
        export_onnx(run, tolerance=0.0)
    assert not [p for p in run.iterdir() if ".onnx" in p.name]
    fixed_batch = True
    with pytest.raises(ExportError, match="fixed batch=1"):
        export_onnx(run)
    assert not [p for p in run.iterdir() if ".onnx" in p.name]
    fixed_batch = False
    result = export_onnx(run, shapes=[(2, 40, 50)])
    assert result.path == run / run_layout.ONNX and result.external_data is None
    assert [p.shape for p in result.parity] == [(2, 3, 40, 50)] and result.worst < 1e-4


@pytest.mark.parametrize("shape", [(2, 3, 250, 198), (1, 3, 96, 64), (1, 3, 9, 70)])
def test_parity_with_pytorch(exported: Exported, shape: tuple[int, ...]) -> None:
    model, _ = load_run(exported.run)
    x = _random(*shape)
    with torch.inference_mode():
        expected = model(x)
    got = OnnxBackend(exported.fp32, threads=1)(x)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-4


def test_backend_takes_numpy_and_checks_its_input(exported: Exported) -> None:
    backend = OnnxBackend(exported.fp32, device="cpu", threads=1)
    x = _random(1, 3, 40, 50)
    from_numpy = backend(x.numpy())
    assert isinstance(from_numpy, np.ndarray) and from_numpy.dtype == np.float32
    np.testing.assert_array_equal(from_numpy, backend(x).numpy())  # a tensor gets a tensor
    assert backend.class_names == list(ARAS400K.names)
    with pytest.raises(ValueError, match="3 channels"):
        backend(_random(1, 4, 40, 50))
    with pytest.raises(ValueError, match="B×C×H×W"):
        backend(_random(3, 40, 50))
    with pytest.raises(TypeError, match="normalised float"):
        backend(torch.zeros(1, 3, 40, 50, dtype=torch.uint8))
    with pytest.raises(ValueError, match="device"):
        OnnxBackend(exported.fp32, device="meta")


def test_single_file_survives_a_move(exported: Exported, tmp_path: Path) -> None:
    assert not list(exported.fp32.parent.glob("*.data"))
    moved = tmp_path / "elsewhere" / "lale.onnx"
    moved.parent.mkdir()
    shutil.copy(exported.fp32, moved)
    x = _random(2, 3, 33, 47)
    assert torch.equal(OnnxBackend(moved, threads=1)(x), OnnxBackend(exported.fp32, threads=1)(x))


def test_metadata_describes_the_model(exported: Exported) -> None:
    meta: dict[str, Any] = read_metadata(exported.fp32)
    config = RunConfig.from_dict(meta["run_config"])  # the whole run config round-trips
    image = ARAS400K.image
    assert meta["format"] == "lale.onnx" and meta["model"] == "lale_t"
    assert meta["class_names"] == {str(k): n for k, n in enumerate(ARAS400K.names)}
    assert meta["num_classes"] == 7 and meta["in_channels"] == 3
    assert meta["mean"] == config.mean and meta["std"] == config.std
    assert meta["scale"] == image.scale and meta["offset"] == image.offset
    assert meta["bands"] == config.bands and meta["band_count"] == image.band_count
    assert meta["pad_multiple"] == 32 and meta["quantization"] == "none"
    assert meta["class_schema"] == ARAS400K.to_dict()
    assert config.model == "lale_t" and config.model_kwargs["dims"] == [32, 64, 128, 192]
    int8 = read_metadata(exported.int8)
    assert int8["quantization"].startswith("int8") and int8["class_names"] == meta["class_names"]


def test_deepness_keys_load_in_qgis(exported: Exported) -> None:
    """The QGIS Deepness plugin's keys, read back as Deepness reads them (JSON values)."""
    props = {
        p.key: p.value
        for p in onnx.load(str(exported.fp32), load_external_data=False).metadata_props
    }
    loads = {k: json.loads(props[k]) for k in props if k in DEEPNESS_KEYS | {"class_names"}}
    assert "seg_thresh" not in loads  # no threshold suits logits: --clients writes probabilities
    assert loads["model_type"] == "Segmentor"
    names = loads["class_names"]  # Deepness: keys are consecutive class indices
    assert [names[k] for k in sorted(names, key=int)] == list(ARAS400K.names)
    assert loads["tiles_size"] == loads["tile_size"] == 256 and loads["tiles_overlap"] == 25
    # 8-bit model: Deepness' v / 255 then (x − m) / s is lale's normalisation exactly.
    config = load_run(exported.run)[1]
    assert ARAS400K.image.scale == 255 and ARAS400K.image.offset == 0
    np.testing.assert_allclose(loads["standardization_mean"], config.mean)
    np.testing.assert_allclose(loads["standardization_std"], config.std)
    assert "resolution" not in loads  # the synthetic data records no pixel size in metres
    v = np.array([[0.0, 40.0, 255.0]] * 3)  # a few 8-bit samples per channel
    m, sd = (np.array(loads[k])[:, None] for k in ("standardization_mean", "standardization_std"))
    mean, std = (np.array(x)[:, None] for x in (config.mean, config.std))
    np.testing.assert_allclose((v / 255 - m) / sd, ((v + 0) / 255 - mean) / std)
    clients_only = {"seg_thresh", "seg_small_segment"}  # lale export --clients writes them
    assert set(DEEPNESS_KEYS) - {"resolution"} - clients_only <= set(read_metadata(exported.int8))


def test_crash_while_writing_leaves_no_file(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that dies halfway (disk full) leaves neither a file nor a temporary one."""

    def half_then_disk_full(proto: Any, path: Path, final: Path) -> None:
        path.write_bytes(proto.SerializeToString()[:1000])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx_io, "save_model", half_then_disk_full)  # under write_model
    target = tmp_path / "crash" / "model.int8.onnx"
    with pytest.raises(OSError, match="No space"):
        quantize_int8(exported.fp32, target)
    assert list(target.parent.iterdir()) == []
    run = Path(shutil.copytree(exported.run, tmp_path / "run"))
    monkeypatch.setattr(export_module, "_export_proto", lambda *a, **k: onnx.load(exported.fp32))
    monkeypatch.setattr(export_module, "save_model", half_then_disk_full)
    with pytest.raises(OSError, match="No space"):
        export_onnx(run, shapes=[(1, 40, 50)])
    assert not [p for p in run.iterdir() if ".onnx" in p.name]


def test_int8_is_smaller_and_agrees(exported: Exported) -> None:
    assert exported.int8.stat().st_size < 0.6 * exported.fp32.stat().st_size
    # Static int8 knows the activation ranges of real (normalised) images, not of N(0, 1) noise.
    crops = calibration_patches(exported.run, 2, split="test", tile=64, seed=1).patches
    x = torch.from_numpy(crops)
    fp32 = OnnxBackend(exported.fp32, threads=1)(x)
    int8 = OnnxBackend(exported.int8, threads=1)(x)
    assert int8.shape == fp32.shape == (2, 7, 64, 64)
    # An untrained model's logits are nearly tied, so a few pixels flip (~0.89 measured);
    # benchmarks/int8.py measures the macro-F1 change of trained runs.
    assert float((int8.argmax(1) == fp32.argmax(1)).float().mean()) > 0.8


def test_evaluate_with_the_onnx_forward_matches_pytorch(exported: Exported) -> None:
    data = exported.run.parent / "data"
    change = compare_f1(exported.run, exported.fp32, exported.int8, batch_size=2)
    torch_scores = evaluate_run(exported.run, data, "test", batch_size=2)
    assert change.images == 2 and change.data == data
    assert change.fp32_scores["confusion_matrix"] == torch_scores["confusion_matrix"]
    assert change.fp32 == torch_scores["macro"]["f1"]


def test_missing_dataset_is_reported_not_guessed(exported: Exported, tmp_path: Path) -> None:
    no_data = _make_run(tmp_path / "no_data", None)
    with pytest.raises(DataUnavailableError, match="records no dataset"):
        compare_f1(no_data, exported.fp32, exported.int8)
    with pytest.raises(DataUnavailableError, match="not found"):
        compare_f1(exported.run, exported.fp32, exported.int8, tmp_path / "gone")


def test_missing_run_dir_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = runner.invoke(app, ["export", f"--run={missing}", f"--out={tmp_path / 'm.onnx'}"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing" in lines[0] and "not found" in lines[0]
    assert not list(tmp_path.glob("*.onnx*"))


def test_default_target_is_what_predict_loads(exported: Exported, tmp_path: Path) -> None:
    from lale.inference.predict import load_backend

    run = Path(shutil.copytree(exported.run, tmp_path / "run"))
    shutil.copy(exported.fp32, run / run_layout.ONNX)
    backend, config = load_backend(run, "onnx")
    assert isinstance(backend, OnnxBackend) and backend.path == run / run_layout.ONNX
    assert config.model == "lale_t"


def _initializers(proto: Any) -> dict[str, Any]:
    return {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}


def test_static_int8_is_qdq_with_per_channel_conv_weights(exported: Exported) -> None:
    proto = onnx.load(str(exported.int8))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    consts = _initializers(proto)
    by_output = {n.output[0]: n for n in proto.graph.node}
    per_channel = 0
    for conv in (n for n in proto.graph.node if n.op_type == "Conv"):
        dq = by_output.get(conv.input[1])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        weight, scale = consts[dq.input[0]], consts[dq.input[1]]
        assert weight.dtype == np.int8
        assert scale.shape == (weight.shape[0],)  # one scale per output channel
        per_channel += 1
    convs = ops.count("Conv")
    assert per_channel == convs - 2  # all but the stem and the head (kept in fp32)
    assert exported.int8.stat().st_size < 0.35 * exported.fp32.stat().st_size
    # onnxruntime fuses the pairs into integer kernels when it loads the file
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(exported.int8.with_suffix(".optimized"))
    ort.InferenceSession(str(exported.int8), options, providers=["CPUExecutionProvider"])
    fused = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    Path(options.optimized_model_filepath).unlink()
    assert "QLinearConv" in fused and "QLinearMatMul" in fused


def test_static_int8_metadata_and_report(exported: Exported) -> None:
    meta = read_metadata(exported.int8)
    data = exported.run.parent / "data"
    assert meta["quantization_kind"] == "static"
    assert meta["quantization"].startswith("int8 static QDQ")
    assert "MinMax" in meta["quantization"] and "stem, head, attention" in meta["quantization"]
    assert meta["quantization_calibration"] == (
        f"2 random 64×64 crops (seed 0) from the 2 images of {data / 'train'}"
    )
    assert int(meta["quantization_fp32_bytes"]) == exported.fp32.stat().st_size
    report = json.loads(int8_report_path(exported.int8).read_text())
    assert report["kind"] == "static" and report["size_bytes"] == exported.int8.stat().st_size
    assert report["f1"]["split"] == "test" and report["f1"]["images"] == 2
    assert report["f1"]["delta_points"] == pytest.approx(
        (report["f1"]["int8_macro_f1"] - report["f1"]["fp32_macro_f1"]) * 100
    )
    assert f"macro-F1 on {data / 'test'}" in exported.output


def _fast_export(monkeypatch: pytest.MonkeyPatch, exported: Exported) -> None:
    """Replace the dynamo exporter's output with the shared export (no 30 s)."""
    monkeypatch.setattr(export_module, "_export_proto", lambda *a, **k: onnx.load(exported.fp32))


def test_run_without_training_data_stops_before_exporting(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast_export(monkeypatch, exported)
    data = tmp_path / "data"
    write_dataset(data, train=0, val=0, test=1, size=32, seed=0)
    shutil.rmtree(data / "train", ignore_errors=True)
    for run, missing in [
        (_make_run(tmp_path / "no_train", data), str(data / "train")),
        (_make_run(tmp_path / "no_data", None), "records no dataset"),
    ]:
        result = runner.invoke(app, ["export", f"--run={run}", "--int8"])
        assert result.exit_code == 3, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and missing in lines[0] and "--int8-kind dynamic" in lines[0]
        assert not [p for p in run.iterdir() if ".onnx" in p.name]


def test_dynamic_kind_and_bad_options(
    exported: Exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast_export(monkeypatch, exported)
    run = Path(shutil.copytree(exported.run, tmp_path / "run"))
    result = runner.invoke(app, ["export", f"--run={run}", "--int8-kind=dynamic"])
    assert result.exit_code == 0, result.output
    int8 = run / "model.int8.onnx"
    assert "int8 (dynamic): wrote" in result.output and "calibration:" not in result.output
    assert read_metadata(int8)["quantization_kind"] == "dynamic"
    assert json.loads(int8_report_path(int8).read_text())["kind"] == "dynamic"
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "QuantizeLinear" not in ops and "DynamicQuantizeLinear" in ops
    for bad in (["--keep-fp32=stem,neck"], ["--int8-conv", "--int8-kind=static"]):
        result = runner.invoke(app, ["export", f"--run={run}", "--int8", *bad])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1
