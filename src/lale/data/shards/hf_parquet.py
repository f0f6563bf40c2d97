"""Image/mask pairs from a Hugging Face dataset saved as Parquet (the layout ``datasets`` writes).

``datasets`` stores an ``Image`` feature as a struct column ``{bytes: binary, path: string}``
(plain binary columns are read too) and names a split's files ``{split}-00000-of-00004.parquet``
(``data/`` on the Hub) or ``{split}.parquet``. Rows are read in batches through PyArrow; each
image and mask is kept as its encoded bytes (:class:`~lale.data.io.encoded.EncodedFile`), so the
usual decoder reads it. ``validation``/``valid`` become lale's ``val`` split.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lale.data.io.encoded import EncodedFile
from lale.data.shards.layout import split_order
from lale.errors import DataError, UnavailableError

__all__ = ["ParquetSplit", "is_parquet_source", "parquet_splits"]

_SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}
_MASK_COLUMNS = ("mask", "label", "annotation", "segmentation")
_BATCH = 256
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source] if source.suffix == ".parquet" else []
    return sorted(source.rglob("*.parquet")) if source.is_dir() else []


def is_parquet_source(source: Path) -> bool:
    """Whether ``source`` is a ``.parquet`` file or a folder of them."""
    return bool(_files(source))


def _split_of(path: Path) -> str:
    prefix = re.split(r"[-.]", path.name, maxsplit=1)[0].lower()
    if prefix not in _SPLITS:
        raise DataError(
            path,
            f"cannot tell its split from the name (expected {', '.join(sorted(_SPLITS))} "
            "before the first '-', as datasets writes: train-00000-of-00001.parquet)",
        )
    return _SPLITS[prefix]


def _suffix(data: bytes, path: str | None) -> str:
    if path and Path(path).suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        return Path(path).suffix.lower()
    return next((s for magic, s in _MAGIC if data.startswith(magic)), ".png")


def _cell(value: Any, file: Path, column: str) -> tuple[bytes, str | None]:
    """``(bytes, path)`` of an Image-feature struct or a binary cell."""
    if isinstance(value, dict):
        value, path = value.get("bytes"), value.get("path")
    else:
        path = None
    if not isinstance(value, bytes) or not value:
        raise DataError(file, f"column {column!r} holds no encoded image bytes")
    return value, path


@dataclass(frozen=True)
class ParquetSplit:
    """One split's Parquet files and the columns to read.

    Attributes:
        name: lale split name.
        files: Its Parquet files, in order.
        rows: Rows over all of them.
        image_column: Column of the encoded images.
        mask_column: Column of the encoded masks.
    """

    name: str
    files: tuple[Path, ...]
    rows: int
    image_column: str
    mask_column: str

    def samples(self) -> Iterator[tuple[str, EncodedFile, EncodedFile]]:
        """``(name, image, mask)`` per row; names are the stored file stems, else the row number."""
        import pyarrow.parquet as pq

        width, seen, row = max(len(str(self.rows - 1)), 6), set[str](), 0
        for file in self.files:
            table = pq.ParquetFile(file)
            columns = [self.image_column, self.mask_column]
            for batch in table.iter_batches(batch_size=_BATCH, columns=columns):
                images, masks = (batch.column(c).to_pylist() for c in columns)
                for image, mask in zip(images, masks, strict=True):
                    img, img_path = _cell(image, file, self.image_column)
                    msk, msk_path = _cell(mask, file, self.mask_column)
                    name = Path(img_path).stem if img_path else f"{self.name}-{row:0{width}d}"
                    if name in seen:
                        name = f"{self.name}-{row:0{width}d}"
                    seen.add(name)
                    where = file.parent / self.name
                    yield (
                        name,
                        EncodedFile.held(where / "images" / (name + _suffix(img, img_path)), img),
                        EncodedFile.held(where / "masks" / (name + _suffix(msk, msk_path)), msk),
                    )
                    row += 1


def parquet_splits(
    source: Path, image_column: str = "image", mask_column: str | None = None
) -> list[ParquetSplit]:
    """The splits of a Parquet dataset (a file, or a folder searched recursively).

    Args:
        source: The ``.parquet`` file or folder.
        image_column: Column of the encoded images.
        mask_column: Column of the encoded masks (default: the first of ``mask``, ``label``,
            ``annotation``, ``segmentation`` present).

    Raises:
        DataError: A file is unreadable, its split unknown, or a column missing.
        UnavailableError: PyArrow is not installed.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise UnavailableError(
            f"reading Parquet needs pyarrow ({err}): pip install pyarrow"
        ) from None
    by_split: dict[str, list[tuple[Path, int]]] = {}
    columns: tuple[str, str] | None = None
    for file in _files(source):
        try:
            meta = pq.ParquetFile(file)
        except (OSError, ValueError) as err:
            raise DataError(file, f"unreadable Parquet file ({err})") from None
        names = meta.schema_arrow.names
        mask = mask_column or next((c for c in _MASK_COLUMNS if c in names), None)
        for want, what in ((image_column, "image"), (mask, "mask")):
            if want is None or want not in names:
                raise DataError(
                    file, f"no {what} column {want or ''!r} (columns: {', '.join(names)})"
                )
        assert mask is not None
        columns = columns or (image_column, mask)
        by_split.setdefault(_split_of(file), []).append((file, meta.metadata.num_rows))
    if columns is None:
        raise DataError(source, "no .parquet files")
    return [
        ParquetSplit(
            split,
            tuple(f for f, _ in files),
            sum(n for _, n in files),
            *columns,
        )
        for split, files in sorted(by_split.items(), key=lambda kv: split_order(kv[0]))
    ]
