"""What the ONNX export, quantisation and backend share: names, metadata, saving.

An exported file is self-describing: :func:`onnx_metadata` builds the ``metadata_props`` the
export embeds (model, classes, bands, scaling and normalisation, the run's configuration) and
:func:`read_metadata` decodes them. :func:`save_model` writes one self-contained file, or puts the
weights beside it for models over protobuf's 2 GB limit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lale.atomic import staged_path
from lale.errors import DataError, UnavailableError, WorkFailedError
from lale.inference.onnx.deepness import DEEPNESS_KEYS

if TYPE_CHECKING:
    import onnx

    from lale.run_config import RunConfig

__all__ = [
    "EXAMPLE_BATCH",
    "FORMAT",
    "FORMAT_VERSION",
    "INPUT_NAME",
    "JSON_KEYS",
    "OUTPUT_NAME",
    "DataUnavailableError",
    "ExportError",
    "check_lale_metadata",
    "decode_metadata",
    "graph_dims",
    "keep_torchvision_importable",
    "onnx_metadata",
    "read_metadata",
    "save_model",
    "set_metadata",
    "write_model",
]

FORMAT = "lale.onnx"
FORMAT_VERSION = 2
"""Version of the metadata layout in :func:`onnx_metadata` (2: ``class_names`` an index → name
object, as the QGIS Deepness plugin reads it; it was a list)."""
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
EXAMPLE_BATCH = 2
"""Batch of the export's example input and of the int8 agreement check."""
_SINGLE_FILE_LIMIT = 2**31 - 1  # protobuf cannot serialise a message over 2 GB


class ExportError(WorkFailedError):
    """The export failed or did not pass its checks; ``str(error)`` is one line."""


class DataUnavailableError(UnavailableError):
    """The dataset to score the ONNX models on is not recorded or not on this machine."""


JSON_KEYS = (
    frozenset(
        {
            "format_version",
            "num_classes",
            "in_channels",
            "class_names",
            "ignore_index",
            "bands",
            "band_names",
            "band_count",
            "scale",
            "offset",
            "mean",
            "std",
            "pad_multiple",
            "input_size",
            "class_schema",
            "run_config",
        }
    )
    | DEEPNESS_KEYS
)
"""``metadata_props`` keys whose values are JSON; every other value is a plain string."""


def decode_metadata(props: dict[str, str]) -> dict[str, Any]:
    """``metadata_props`` as a dict, the values of :data:`JSON_KEYS` decoded."""
    out: dict[str, Any] = {}
    for key, value in props.items():
        if key in JSON_KEYS:
            try:
                out[key] = json.loads(value)
            except json.JSONDecodeError:
                out[key] = value  # written by something else: keep the text
        else:
            out[key] = value
    return out


def check_lale_metadata(path: Path, backend: Any) -> RunConfig:
    """The run config an exported file carries, after checking the file agrees with it.

    Args:
        path: The file (for messages).
        backend: Its :class:`~lale.inference.onnx.backend.OnnxBackend`.

    Raises:
        DataError: No lale run config (a model written by another tool); a JSON value that
            does not parse; ``num_classes``/``in_channels`` that differ from the run config;
            or a graph whose input or output channels differ from it.
    """
    from lale.run_config import RunConfig

    raw = dict(backend.session.get_modelmeta().custom_metadata_map)
    if "run_config" not in raw:
        raise DataError(
            path,
            "not written by lale export: its metadata carries no lale run config, so the "
            "classes, bands and scaling it was trained with are unknown (export the run with "
            "lale export)",
        )
    for key in sorted(JSON_KEYS & raw.keys()):
        try:
            json.loads(raw[key])
        except json.JSONDecodeError as err:
            raise DataError(
                path, f"metadata {key!r} is not valid JSON ({err}); tampered?"
            ) from None
    try:
        config = RunConfig.from_dict(backend.metadata["run_config"])
        config.image_spec()
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise DataError(path, f"invalid run config in its metadata ({err})") from err
    for key, want in (("num_classes", config.num_classes), ("in_channels", config.in_channels)):
        if key in backend.metadata and backend.metadata[key] != want:
            raise DataError(
                path,
                f"metadata {key} is {backend.metadata[key]!r} but its run config says {want}; "
                "tampered?",
            )
    shapes = {
        "input": (backend.session.get_inputs()[0].shape, config.in_channels),
        "output": (backend.session.get_outputs()[0].shape, config.num_classes),
    }
    for what, (shape, want) in shapes.items():
        got = shape[1] if len(shape) == 4 else None
        if isinstance(got, int) and got != want:
            raise DataError(
                path, f"the graph's {what} has {got} channels but its run config says {want}"
            )
    return config


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``metadata_props`` of an ONNX file, JSON values (:data:`JSON_KEYS`) decoded.

    Reads only the model header, not the weights. Files not written by ``lale export`` give
    whatever metadata they carry (often none).

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX file not found")
    model = onnx.load(str(path), load_external_data=False)
    return decode_metadata({p.key: p.value for p in model.metadata_props})


def onnx_metadata(config: RunConfig, pad_multiple: int | None = None) -> dict[str, str]:
    """The ``metadata_props`` that make an exported file self-describing.

    Keys in :data:`JSON_KEYS` hold JSON, the rest plain text:
    ``format``, ``format_version``, ``model``, ``num_classes``, ``in_channels``,
    ``class_names`` (``{"0": name, …}``), ``ignore_index``, ``bands`` (1-based source bands in
    input order, ``null`` = all), ``band_names``, ``band_count``, ``scale``, ``offset``,
    ``mean``, ``std``,
    ``normalization`` (the formula), ``pad_multiple``, ``input_size``, ``input``, ``output``,
    ``class_schema`` (``ClassSchema.to_dict()``), ``run_config`` (``RunConfig.to_dict()``),
    ``quantization``, ``lale_version`` and ``torch_version``; and the QGIS Deepness plugin's keys
    (:func:`~lale.inference.onnx.deepness.deepness_metadata`).

    Args:
        config: The run's configuration.
        pad_multiple: The multiple the model pads inputs to, if it pads.
    """
    import torch

    from lale.profiling.environment import lale_version

    schema = config.schema()
    image = schema.image
    mean, std = (
        (config.mean, config.std)
        if config.mean is not None and config.std is not None
        else image.normalization()
    )
    sides = "any batch, height and width"
    if pad_multiple is not None:
        sides += (
            f"; the graph reflect-pads H and W to a multiple of {pad_multiple}, so sides of "
            f"{pad_multiple // 2} px or less need replicate padding first (OnnxBackend does it)"
        )
    values: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": config.model,
        "num_classes": config.num_classes,
        "in_channels": config.in_channels,
        "class_names": {str(k): name for k, name in enumerate(schema.names)},
        "ignore_index": schema.ignore_index,
        "bands": config.bands,
        "band_names": config.band_names,
        "band_count": image.band_count,
        "scale": image.scale,
        "offset": image.offset,
        "mean": list(mean),
        "std": list(std),
        "normalization": "x = ((raw + offset) / scale - mean) / std, per input channel",
        "pad_multiple": pad_multiple,
        "input_size": config.input_size,
        "input": (
            f"{INPUT_NAME}: float32 [batch, {config.in_channels}, height, width], normalised "
            f"as in 'normalization'; {sides}"
        ),
        "output": (
            f"{OUTPUT_NAME}: float32 [batch, {config.num_classes}, height, width] class "
            "logits; the argmax is a key of class_names"
        ),
        "class_schema": config.class_schema,
        "run_config": config.to_dict(),
        "quantization": "none",
        "lale_version": lale_version(),
        "torch_version": torch.__version__,
    }
    from lale.inference.onnx.deepness import deepness_metadata

    return {
        **{
            k: json.dumps(v, ensure_ascii=False) if k in JSON_KEYS else str(v)
            for k, v in values.items()
        },
        **deepness_metadata(config),
    }


def set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Set ``props`` in ``proto.metadata_props``, keeping other keys already there."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for key, value in [*kept, *props.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _weights_bytes(proto: onnx.ModelProto) -> int:
    return sum(len(t.raw_data) or t.ByteSize() for t in proto.graph.initializer)


def _data_name(path: Path) -> str:
    return f"{path.name}.data"


def write_model(proto: onnx.ModelProto, target: Path) -> Path | None:
    """Write ``proto`` to ``target`` atomically: staged beside it, then renamed into place.

    Returns:
        The external data file, if one was written (see :func:`save_model`).
    """
    staged = staged_path(target)
    try:
        data_file = save_model(proto, staged, target)
        os.replace(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return data_file


def save_model(proto: onnx.ModelProto, path: Path, final: Path) -> Path | None:
    """Write ``proto`` to ``path``: one file, or (over 2 GB) weights in ``final.name + .data``.

    Returns:
        The external data file, if one was written.
    """
    import onnx

    if _weights_bytes(proto) + (1 << 24) < _SINGLE_FILE_LIMIT:
        data = proto.SerializeToString()
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return None
    data_file = final.parent / _data_name(final)
    data_file.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(
        proto,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=_data_name(final),
    )
    return data_file


def keep_torchvision_importable() -> None:
    """Define torchvision's placeholder operators now, for good (see lale._torchvision_compat).

    torch.export probes ``find_spec("torchvision")``, which fires the import hook of
    ``lale-torchvision-compat.pth``; the hook then removes itself and the schemas it defined
    are garbage-collected with it, so a later ``import torchvision`` (torchmetrics, for the
    F1 comparison) fails with "operator torchvision::nms does not exist". Calling
    :func:`~lale._torchvision_compat.install` from the imported module keeps them alive.
    """
    from lale import _torchvision_compat

    _torchvision_compat.install()


def graph_dims(path: str | Path) -> dict[str, tuple[int | str, ...]]:
    """Shape of every graph input and output by name: ints for fixed axes, names for symbolic
    ones (``"?"`` for an axis with neither)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims: dict[str, tuple[int | str, ...]] = {}
    for value in [*model.graph.input, *model.graph.output]:
        shape = value.type.tensor_type.shape
        dims[value.name] = tuple(
            d.dim_param
            if d.HasField("dim_param")
            else d.dim_value
            if d.HasField("dim_value")
            else "?"
            for d in shape.dim
        )
    return dims
