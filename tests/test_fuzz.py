"""Property-based tests: awkward masks, schema files, run configs and rasters given to lale.

Every case must end in exit 0 with the promised outputs, or in a one-line error (exit 1, 2 or 3)
without a traceback; never exit 0 without the outputs. Sizes and example counts are small so
the whole module runs in well under a minute.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from rasters import write_geotiff
from typer.testing import CliRunner

from lale import cli
from lale.data.schema import ARAS400K, load_schema
from lale.errors import LaleError

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning"),
]

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
runner = CliRunner()


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def check_outcome(result: Any, *outputs: Path) -> None:
    """Exit 0 with every output, or exit 1/2/3 with short error lines and no traceback."""
    text = result.output
    event(f"exit {result.exit_code}")
    assert "Traceback" not in text, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    if result.exit_code == 0:
        missing = [str(p) for p in outputs if not p.is_file()]
        assert not missing, f"exit 0 without {missing}: {text}"
        return
    assert result.exit_code in (1, 2, 3), text
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors and all(
        line.startswith(("error:", "failed:")) or "failed" in line for line in errors
    )


# --- masks ------------------------------------------------------------------------------

MODES = ("L", "P", "RGB", "RGBA", "I;16")


@st.composite
def masks(draw: st.DrawFn) -> Image.Image:
    mode = draw(st.sampled_from(MODES))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    known = [tuple(c) for c in ARAS400K.colors]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if mode in ("RGB", "RGBA"):
        pool = known + [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2)]
        picks = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
        idx = rng.integers(0, len(picks), (h, w))
        rgb = np.asarray(picks, np.uint8)[idx]
        if mode == "RGBA":
            alpha = draw(st.sampled_from([255, 0, "mixed"]))
            a = rng.integers(0, 2, (h, w)) * 255 if alpha == "mixed" else np.full((h, w), alpha)
            return Image.fromarray(np.dstack([rgb, a.astype(np.uint8)]), "RGBA")
        return Image.fromarray(rgb, "RGB")
    top = draw(st.sampled_from([6, 7, 255, 65535])) if mode == "I;16" else 255
    values = rng.integers(0, min(top, 255 if mode != "I;16" else top) + 1, (h, w))
    if mode == "I;16":
        return Image.fromarray(values.astype(np.uint16))  # mode I;16
    image = Image.fromarray(values.astype(np.uint8), "L")
    if mode == "P":
        image = image.convert("P")
        palette = draw(st.sampled_from(["schema", "random"]))
        colours = np.asarray(ARAS400K.colors, np.uint8).ravel().tolist()
        if palette == "random":
            colours = rng.integers(0, 256, 768).tolist()
        image.putpalette(colours)
    return image


@FUZZ
@given(mask=masks())
def test_evaluate_any_mask(run_dir: Path, mask: Image.Image) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        data = scratch / "data" / "test"
        (data / "images").mkdir(parents=True)
        (data / "masks").mkdir()
        w, h = mask.size
        Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(data / "images" / "a.png")
        mask.save(data / "masks" / "a.png")
        out = scratch / "scores.json"
        args = ["evaluate", "--run", str(run_dir), "--data", str(scratch / "data")]
        result = runner.invoke(cli.app, [*args, "--json", str(out)])
        check_outcome(result, out)
        if result.exit_code == 0:
            assert "macro" in json.loads(out.read_text())


# --- class-schema files -----------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 300)
    | st.floats(allow_nan=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_valid_schema = ARAS400K.to_dict()


def _mutate(draw: st.DrawFn, target: dict[str, Any]) -> None:
    """Drop one key of ``target``, give it a value of another type, or add an unknown key."""
    key = draw(st.sampled_from(sorted(target)))
    action = draw(st.sampled_from(["drop", "retype", "extra"]))
    if action == "drop":
        del target[key]
    elif action == "retype":
        target[key] = draw(_json)
    else:
        target[draw(st.text(min_size=1, max_size=5))] = draw(_json)


@st.composite
def schema_documents(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["random", "mutated"]))
    if kind == "random":
        return draw(_json)
    doc = copy.deepcopy(_valid_schema)
    for _ in range(draw(st.integers(1, 3))):
        target: Any = doc
        if draw(st.booleans()) and doc.get("classes"):
            target = (
                draw(st.sampled_from(doc["classes"])) if isinstance(doc["classes"], list) else doc
            )
        if not isinstance(target, dict) or not target:
            continue
        _mutate(draw, target)
    return doc


@FUZZ
@given(doc=schema_documents(), as_yaml=st.booleans())
def test_schema_files_load_or_fail_in_one_line(scratch: Path, doc: Any, as_yaml: bool) -> None:
    yaml = pytest.importorskip("yaml")
    path = scratch / ("schema.yaml" if as_yaml else "schema.json")  # rewritten per example
    path.write_text(yaml.safe_dump(doc) if as_yaml else json.dumps(doc))
    try:
        schema = load_schema(path)
    except LaleError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert schema.num_classes >= 1 and len(schema.names) == schema.num_classes


# --- run configs --------------------------------------------------------------------------


@st.composite
def config_mutations(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    doc = copy.deepcopy(valid)
    if draw(st.integers(0, 9)) == 0:
        return draw(_json)
    for _ in range(draw(st.integers(1, 2))):
        target: Any = doc
        nested = [k for k, v in doc.items() if isinstance(v, dict) and v]
        if nested and draw(st.booleans()):
            target = doc[draw(st.sampled_from(sorted(nested)))]
        _mutate(draw, target)
    return doc


@pytest.fixture(scope="module")
def valid_config(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "config.json").read_text())


def test_config_mutations(run_dir: Path, valid_config: dict[str, Any], tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    Image.fromarray(np.full((20, 20, 3), 100, np.uint8)).save(image)

    @FUZZ
    @given(doc=config_mutations(valid_config))
    def check(doc: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(shutil.copytree(run_dir, Path(tmp) / "run"))
            (run / "config.json").write_text(json.dumps(doc))
            out = Path(tmp) / "out"
            args = [
                "predict",
                "--run",
                str(run),
                "--out",
                str(out),
                "--tile",
                "32",
                "--overlap",
                "8",
            ]
            result = runner.invoke(cli.app, [*args, "--no-progress", str(image)])
            check_outcome(result, out / "in_classes.png", out / "in_areas.json")

    check()


# --- rasters ------------------------------------------------------------------------------

DTYPES = ("uint8", "uint16", "int16", "float32", "float64")


@st.composite
def rasters(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(st.sampled_from(DTYPES))
    bands, h, w = draw(st.integers(1, 5)), draw(st.integers(1, 12)), draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    top = {"uint8": 255, "uint16": 10000, "int16": 3000}.get(dtype, 1)
    data = (rng.random((bands, h, w)) * top).astype(dtype)
    nodata = draw(st.sampled_from([None, 0, "nan"] if dtype.startswith("float") else [None, 0]))
    if nodata is not None:
        fill = np.nan if nodata == "nan" else 0
        data[:, : draw(st.integers(0, h)), :] = fill
    if dtype.startswith("float") and draw(st.booleans()):
        data.flat[draw(st.integers(0, data.size - 1))] = np.nan
    crs = draw(st.sampled_from(["EPSG:32635", "EPSG:4326", None]))
    return {"data": data, "nodata": None if nodata is None else float(nodata), "crs": crs}


def test_predict_small_rasters(run_dir: Path, tmp_path: Path) -> None:
    @FUZZ
    @given(raster=rasters())
    def check(raster: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scene.tif"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                write_geotiff(path, raster["data"], nodata=raster["nodata"], crs=raster["crs"])
            out = Path(tmp) / "out"
            args = ["predict", "--run", str(run_dir), "--out", str(out), "--tile", "32"]
            result = runner.invoke(cli.app, [*args, "--overlap", "8", "--no-progress", str(path)])
            files = ("classes.tif", "preview.png", "areas.csv", "areas.json")
            check_outcome(result, *(out / f"scene_{f}" for f in files))

    check()


@pytest.mark.parametrize("change", ["no classes", "fewer classes"])
def test_found_by_fuzzing_config_schema_is_checked_on_load(
    run_dir: Path, valid_config: dict[str, Any], tmp_path: Path, change: str
) -> None:
    """A stored class schema that is invalid, or disagrees with the model, is a RunError."""
    run = Path(shutil.copytree(run_dir, tmp_path / "run"))
    doc = copy.deepcopy(valid_config)
    classes = doc["class_schema"]["classes"]
    doc["class_schema"]["classes"] = [] if change == "no classes" else classes[:-1]
    (run / "config.json").write_text(json.dumps(doc))
    image = tmp_path / "in.png"
    Image.fromarray(np.full((20, 20, 3), 100, np.uint8)).save(image)
    result = runner.invoke(
        cli.app, ["predict", "--run", str(run), "--out", str(tmp_path / "out"), str(image)]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert str(run / "config.json") in line


# --- ONNX metadata ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_file(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = runner.invoke(cli.app, ["export", "--run", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@st.composite
def metadata_edits(draw: st.DrawFn, props: dict[str, str]) -> dict[str, str | None]:
    """Up to three keys of an exported file's metadata dropped, retyped, truncated or edited
    inside the run config (``None``: the key is removed)."""
    edits: dict[str, str | None] = {}
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(props)))
        action = draw(st.sampled_from(["drop", "json", "truncate", "config"]))
        if action == "drop":
            edits[key] = None
        elif action == "json":
            edits[key] = json.dumps(draw(_json))
        elif action == "truncate":
            edits[key] = props[key][: draw(st.integers(0, max(0, len(props[key]) - 1)))]
        else:
            config = json.loads(props["run_config"])
            _mutate(draw, config)
            edits["run_config"] = json.dumps(config)
    return edits


def test_predict_model_with_any_metadata(onnx_file: Path, tmp_path: Path) -> None:
    import onnx

    proto = onnx.load(str(onnx_file))
    props = {p.key: p.value for p in proto.metadata_props}
    image = tmp_path / "in.png"
    Image.fromarray(np.full((40, 36, 3), 90, np.uint8)).save(image)

    @FUZZ
    @given(edits=metadata_edits(props))
    def check(edits: dict[str, str | None]) -> None:
        changed = {k: v for k, v in {**props, **edits}.items() if v is not None}
        del proto.metadata_props[:]
        for key, value in changed.items():
            proto.metadata_props.add(key=key, value=value)
        with tempfile.TemporaryDirectory() as tmp:
            model = Path(tmp) / "model.onnx"
            onnx.save(proto, str(model))
            out = Path(tmp) / "out"
            args = ["predict", str(image), "--model", str(model), "--out", str(out)]
            result = runner.invoke(cli.app, [*args, "--tile", "32", "--no-progress"])
            check_outcome(result, out / "in_classes.png", out / "in_areas.json")

    check()


# --- zones files --------------------------------------------------------------------------


@st.composite
def zone_layers(draw: st.DrawFn) -> dict[str, Any]:
    """Polygons with random vertices (often self-intersecting), empty ones, other geometry
    types, names that may repeat, and a CRS or none."""
    import shapely

    x0, y0 = 500_000.0, 4_500_000.0
    geoms: list[Any] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["polygon", "polygon", "empty", "line", "point"]))
        coords = [
            (x0 + draw(st.integers(-20, 60)), y0 - draw(st.integers(-20, 60)))
            for _ in range(draw(st.integers(3, 6)))
        ]
        if kind == "polygon":
            geoms.append(shapely.Polygon(coords))
        elif kind == "empty":
            geoms.append(shapely.Polygon())
        elif kind == "line":
            geoms.append(shapely.LineString(coords))
        else:
            geoms.append(shapely.Point(coords[0]))
    names = [draw(st.sampled_from(["a", "b", "c", "d"])) for _ in geoms]
    crs = draw(st.sampled_from(["EPSG:32635", "EPSG:4326", None]))
    return {"geoms": geoms, "names": names, "crs": crs, "by": draw(st.sampled_from(["name", None]))}


def test_areas_with_any_zones(tmp_path: Path) -> None:
    import pyogrio
    import shapely

    from tests.classmaps import write_class_map

    classes = np.random.default_rng(0).integers(0, 3, (8, 8)).astype(np.uint8)
    path = write_class_map(tmp_path / "map.tif", classes)

    @FUZZ
    @given(layer=zone_layers())
    def check(layer: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            zones = Path(tmp) / "zones.gpkg"
            wkb = np.array(shapely.to_wkb(layer["geoms"]), dtype=object)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pyogrio.raw.write(
                    zones, wkb, [np.array(layer["names"], dtype=object)], ["name"],
                    driver="GPKG", crs=layer["crs"], geometry_type="Unknown",
                )  # fmt: skip
            out = Path(tmp) / "out"
            args = ["areas", str(path), "--zones", str(zones), "--out", str(out), "--no-progress"]
            by = ["--by", layer["by"]] if layer["by"] else []
            result = runner.invoke(cli.app, [*args, *by])
            check_outcome(result, out / "map_zones.csv", out / "map_zones.json")

    check()


# --- shard indexes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lale.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("fuzz-data")
    write_dataset(root, train=2, val=2, test=3, size=32, seed=0)
    out = tmp_path_factory.mktemp("fuzz-shards") / "shards"
    result = runner.invoke(cli.app, ["pack", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@st.composite
def index_edits(draw: st.DrawFn, lale_index: dict[str, Any], chunks: dict[str, Any]) -> Any:
    """A mutated ``lale-index.json`` or LitData ``index.json`` (or random JSON for either)."""
    which = draw(st.sampled_from(["lale-index.json", "index.json"]))
    doc = copy.deepcopy(lale_index if which == "lale-index.json" else chunks)
    if draw(st.integers(0, 5)) == 0:
        return which, draw(_json)
    target = doc
    if which == "index.json" and draw(st.booleans()):
        target = doc["chunks"][0]
    elif which == "lale-index.json" and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(doc)))
        if doc[key]:
            doc[key][draw(st.integers(0, len(doc[key]) - 1))] = draw(_json)
            return which, doc
    _mutate(draw, target)
    return which, doc


def test_evaluate_on_shards_with_any_index(run_dir: Path, shard_set: Path) -> None:
    lale_index = json.loads((shard_set / "test" / "lale-index.json").read_text())
    chunks = json.loads((shard_set / "test" / "index.json").read_text())

    @FUZZ
    @given(edit=index_edits(lale_index, chunks))
    def check(edit: tuple[str, Any]) -> None:
        name, doc = edit
        with tempfile.TemporaryDirectory() as tmp:
            shards = Path(shutil.copytree(shard_set, Path(tmp) / "shards"))
            (shards / "test" / name).write_text(json.dumps(doc))
            scores = Path(tmp) / "scores.json"
            args = ["evaluate", "--run", str(run_dir), "--data", str(shards), "--json", str(scores)]
            result = runner.invoke(cli.app, args)
            check_outcome(result, scores)

    check()
