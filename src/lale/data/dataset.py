"""Segmentation datasets in the ARAS400k layout or a shard set: a split as a torch ``Dataset``.

A split's pairs come from its folder (:mod:`lale.data.io.layout`) or a shard set
(:mod:`lale.data.shards`). Training samples are random crops, evaluation samples whole images
(batched by :class:`~lale.data.collate.PadCollate`); unknown mask colours become the ignore
label and are counted (docs/design.md#aras400k-layout, docs/design.md#unknown-colours).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info

from lale.data.io import (
    Window,
    check_image_info,
    is_geotiff,
    read_image_alpha,
    read_info,
    read_mask,
)
from lale.data.io.complete import check_complete
from lale.data.io.encoded import FileSource
from lale.data.io.layout import Pair, list_names, scan_folder
from lale.data.schema import ARAS400K, ClassSchema, load_schema
from lale.data.shards import is_shards, shard_pairs
from lale.errors import DataError

__all__ = [
    "Mode",
    "SegmentationDataset",
    "UnknownPixels",
    "alpha_message",
    "bad_pairs_message",
    "scan_split",
]

logger = logging.getLogger("lale.data")

Mode = Literal["train", "eval"]
_LIST = 5  # bad pairs listed in a message before "… and N more"


def bad_pairs_message(split: str, bad: Sequence[tuple[str, str]]) -> str:
    """One line listing the pairs ``skip_bad`` left out of ``split`` (empty when none)."""
    if not bad:
        return ""
    shown = "; ".join(why for _, why in bad[:_LIST])
    more = f"; … and {len(bad) - _LIST} more" if len(bad) > _LIST else ""
    return f"{split} split: skipped {len(bad)} bad image/mask pairs: {shown}{more}"


def alpha_message(split: str, images: Sequence[FileSource]) -> str:
    """One line naming the images of ``split`` whose alpha band is dropped (empty when none)."""
    if not images:
        return ""
    return (
        f"{split} split: {len(images)} images have an alpha band, which is dropped; their "
        f"transparent pixels are ignored in the loss and the metrics: "
        f"{list_names([p.name for p in images])}"
    )


def scan_split(root: str | Path, split: str, skipped: list[Path] | None = None) -> list[Pair]:
    """The image/mask pairs of ``root/split``, sorted by name (see :func:`scan_folder`).

    In a shard set written by ``lale pack`` (:mod:`lale.data.shards`) the pairs are those of
    the folder it was packed from, in the same order.

    Raises:
        DataError: As :func:`~lale.data.io.layout.scan_folder`, or for a shard set as
            :func:`~lale.data.shards.shard_pairs`.
    """
    if is_shards(root):
        return shard_pairs(root, split)[0]
    return scan_folder(root, split, skipped)


def _eg(examples: Sequence[str]) -> str:
    return f" (e.g. {', '.join(examples)})" if examples else ""


@dataclass(frozen=True)
class UnknownPixels:
    """Mask pixels whose colour or value is not in the schema, per file.

    Attributes:
        counts: Mask file name → unknown pixels, for the files that have any.
        examples: Mask file name → a few of its unknown colours or values.
        checked: Mask files counted so far (all of them after a full pass or :meth:`check`).
        total_files: Mask files in the split.
        ignore_index: The label they were given.
    """

    counts: dict[str, int]
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)
    checked: int = 0
    total_files: int = 0
    ignore_index: int = 255

    @property
    def total(self) -> int:
        """Unknown pixels over all files."""
        return sum(self.counts.values())

    def __str__(self) -> str:
        head = (
            f"{len(self.counts)} of {self.checked} mask files checked ({self.total_files} in the"
            f" split) have {self.total} pixels of colours/values not in the schema"
            f" (labelled {self.ignore_index}, ignored)"
        )
        items = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        lines = [f"  {n}: {c} px{_eg(self.examples.get(n, ()))}" for n, c in items]
        more = [f"  … and {len(lines) - 20} more files"] if len(lines) > 20 else []
        return "\n".join([head, *lines[:20], *more])


class SegmentationDataset(Dataset[tuple[Tensor, Tensor]]):
    """Image/mask pairs of one split, as ``(image, mask)`` tensors.

    ``image`` is ``C×H×W`` in the file's sample type for uint8 images, else float32 of the raw
    values; scaling, normalisation and augmentation happen on batches
    (:mod:`lale.data.transforms`). ``mask`` is ``H×W`` uint8 class indices, ``ignore_index``
    where no class applies.

    Args:
        root: Dataset root holding ``{split}/{images,masks}``, or a shard set written by
            ``lale pack`` (read the same way, sample for sample; its sizes are known from
            packing, so ``check_headers`` does not apply).
        split: Split folder name (``"train"``, ``"val"``, ``"test"`` or any other).
        schema: Class schema, or a name or file for :func:`~lale.data.schema.load_schema`.
        mode: ``"train"``: random ``crop_size`` crops, padded where the image is smaller;
            ``"eval"``: whole images. Default: ``"train"`` for the ``train`` split.
        crop_size: Side of the training crops.
        strict: Raise :class:`DataError` on the first mask with unknown colours or values.
        check_headers: Read every file's header now (sizes, band counts, sample types) so
            that mismatches fail at once; else they fail when the sample is read.
        skip_bad: With ``check_headers``: leave out the pairs whose headers fail the checks,
            recording them in :attr:`bad_pairs`, instead of raising (still an error when no
            pair is left).
        generator: Random generator for crop positions and padding offsets; ``None`` uses
            torch's global generator. DataLoader workers (which seed torch per worker) reseed a
            given generator from their worker seed, so crops differ between workers.

    Raises:
        DataError: See :func:`scan_split`; with ``check_headers`` also size, band-count and
            sample-type mismatches (with ``skip_bad``, only when every pair has one).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        schema: ClassSchema | str | Path = ARAS400K,
        *,
        mode: Mode | None = None,
        crop_size: int = 256,
        strict: bool = False,
        check_headers: bool = True,
        generator: torch.Generator | None = None,
        skip_bad: bool = False,
    ) -> None:
        if crop_size < 1:
            raise ValueError(f"crop_size must be positive, got {crop_size}")
        self.root, self.split = Path(root), split
        self.schema = load_schema(schema)
        self.mode: Mode = mode or ("train" if split == "train" else "eval")
        self.crop_size, self.strict, self.generator = crop_size, strict, generator
        self.skipped: list[Path] = []
        """Files in the split's folders that are not samples (see :func:`scan_split`)."""
        self._sizes: list[tuple[int, int] | None]
        if is_shards(self.root):
            self.pairs, sizes = shard_pairs(self.root, split)
            self._sizes = list(sizes)
        else:
            self.pairs = scan_split(self.root, split, self.skipped)
            self._sizes = [None] * len(self.pairs)
        self.bad_pairs: list[tuple[str, str]] = []
        """``(sample name, what is wrong)`` of the pairs ``skip_bad`` left out."""
        self.alpha_dropped: list[FileSource] = []
        """Images whose alpha band is dropped (its transparent pixels become ignore)."""
        if check_headers and not is_shards(self.root):
            self._sizes = self._check_all(skip_bad)
        # Unknown pixels per file (-1: not counted yet), shared with DataLoader workers.
        self._unknown = torch.full((len(self.pairs),), -1, dtype=torch.int64).share_memory_()
        self._examples: dict[str, tuple[str, ...]] = {}
        self._reported: set[str] = set()
        self._worker: int | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def names(self) -> list[str]:
        """Sample names (file stems), in index order."""
        return [p.name for p in self.pairs]

    def _check(self, i: int, record: bool = False) -> tuple[int, int]:
        """Check pair ``i``'s headers and completeness; return its ``(height, width)``.

        ``record``: note an image whose alpha band is dropped in :attr:`alpha_dropped`.
        """
        pair = self.pairs[i]
        image, mask = read_info(pair.image), read_info(pair.mask, "mask")
        check_image_info(pair.image, image, self.schema.image)
        check_complete(pair.image)
        check_complete(pair.mask, "mask")
        if (image.height, image.width) != (mask.height, mask.width):
            raise DataError(
                pair.mask,
                f"mask is {mask.height}×{mask.width} but image {pair.image.name} is "
                f"{image.height}×{image.width}",
            )
        if mask.count not in (1, 3, 4):
            raise DataError(pair.mask, f"mask has {mask.count} bands; expected 1 or 3")
        if record and image.alpha and image.count - 1 == self.schema.image.band_count:
            self.alpha_dropped.append(pair.image)
        return image.height, image.width

    def _check_all(self, skip_bad: bool) -> list[tuple[int, int] | None]:
        kept, sizes = [], []
        for i, pair in enumerate(self.pairs):
            try:
                sizes.append(self._check(i, record=True))
                kept.append(pair)
            except DataError as err:
                if not skip_bad:
                    raise
                self.bad_pairs.append((pair.name, str(err)))
        if not kept:
            raise DataError(self.root / self.split, f"all {len(self.pairs)} pairs are bad")
        self.pairs = kept
        return list(sizes)

    def _size(self, i: int) -> tuple[int, int]:
        size = self._sizes[i]
        if size is None:
            size = self._sizes[i] = self._check(i)
        return size

    def _window(self, i: int, rng: torch.Generator | None) -> Window | None:
        """Random training crop of sample ``i`` (``None``: the whole image)."""
        if self.mode == "eval":
            return None
        (h, w), c = self._size(i), self.crop_size
        ch, cw = min(c, h), min(c, w)
        r = int(torch.randint(0, h - ch + 1, (1,), generator=rng))
        k = int(torch.randint(0, w - cw + 1, (1,), generator=rng))
        return r, k, ch, cw

    def _rng(self) -> torch.Generator | None:
        """The crop generator; inside a DataLoader worker, reseeded from the worker's seed."""
        info = get_worker_info()
        if self.generator is not None and info is not None and self._worker != info.id:
            self.generator = torch.Generator().manual_seed(info.seed)
            self._worker = info.id
        return self.generator

    def _read(self, index: int, window: Window | None) -> tuple[NDArray, NDArray[np.uint8]]:
        """Image and labels of sample ``index`` (within ``window``), unknown pixels recorded."""
        pair = self.pairs[index]
        image, opaque = read_image_alpha(pair.image, self.schema.image, window)
        # Masks are decoded whole (counting over the file) unless a GeoTIFF window suffices.
        whole = window is None or not is_geotiff(pair.mask) or window[2:] == self._size(index)
        mask = read_mask(pair.mask, self.schema, None if whole else window)
        labels = mask.labels
        expect = image.shape[1:] if window is None else self._size(index) if whole else None
        if expect is not None and labels.shape != expect:
            raise DataError(
                pair.mask,
                f"mask is {labels.shape[0]}×{labels.shape[1]} but image {pair.image.name} is "
                f"{expect[0]}×{expect[1]}",
            )
        if whole:
            self._unknown[index] = mask.unknown
            if mask.unknown:
                self._examples[pair.mask.name] = mask.examples
        if mask.unknown and self.strict:
            raise DataError(
                pair.mask,
                f"{mask.unknown} pixels of colours/values not in schema {self.schema.name!r} "
                f"(e.g. {', '.join(mask.examples)}); strict mode forbids them",
            )
        if whole and window is not None:
            r, k, h, w = window
            labels = labels[r : r + h, k : k + w]
        if opaque is not None and not opaque.all():  # transparent image pixels: no label
            labels = np.where(opaque, labels, np.uint8(self.schema.ignore_index))
        return image, labels

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self._get(index, self._rng())

    def sample(self, index: int, seed: int) -> tuple[Tensor, Tensor]:
        """Sample ``index`` with its crop position and padding drawn from ``seed`` alone.

        The same ``(index, seed)`` gives the same crop in any process, which is what makes
        training resumable mid-epoch (:mod:`lale.training.sampling`).
        """
        return self._get(index, torch.Generator().manual_seed(seed))

    def _get(self, index: int, rng: torch.Generator | None) -> tuple[Tensor, Tensor]:
        window = self._window(index, rng)
        image, labels = self._read(index, window)
        if image.dtype != np.uint8:
            image = image.astype(np.float32)
        img, lab = torch.from_numpy(image), torch.from_numpy(np.ascontiguousarray(labels))
        if window is not None and img.shape[1:] != (self.crop_size, self.crop_size):
            img, lab = _pad(img, lab, self.crop_size, self.schema.ignore_index, rng)
        return img, lab

    def check(self, progress: Callable[[int, int], None] | None = None) -> UnknownPixels:
        """Read and decode every image and mask now; return the unknown-pixel report.

        Raises:
            DataError: The first bad file (unreadable, truncated, mismatched; with ``strict``,
                a mask with unknown colours or values).
        """
        for i in range(len(self)):
            self._check(i)
            self._read(i, None)
            if progress is not None:
                progress(i + 1, len(self))
        return self.unknown_pixels()

    def unknown_pixels(self) -> UnknownPixels:
        """Unknown mask pixels per file, over the files read so far (in any worker)."""
        counts = self._unknown.tolist()
        names = [p.mask.name for p in self.pairs]
        found = {n: c for n, c in zip(names, counts, strict=True) if c > 0}
        return UnknownPixels(
            counts=found,
            examples={n: self._examples[n] for n in found if n in self._examples},
            checked=sum(c >= 0 for c in counts),
            total_files=len(names),
            ignore_index=self.schema.ignore_index,
        )

    def report_unknown(self, log: logging.Logger | None = None) -> UnknownPixels:
        """Log the files with unknown mask pixels that were not reported before, as one warning.

        Call it after an epoch (or after :meth:`check`); files read since the last call that
        have unknown pixels are reported, each file once.

        Returns:
            The report over all files read so far.
        """
        report = self.unknown_pixels()
        new = {n: c for n, c in report.counts.items() if n not in self._reported}
        if new:
            self._reported.update(new)
            fresh = UnknownPixels(
                new, report.examples, report.checked, report.total_files, report.ignore_index
            )
            (log or logger).warning("%s split of %s: %s", self.split, self.root, fresh)
        return report


def _pad(
    image: Tensor, labels: Tensor, size: int, ignore: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Pad a crop smaller than ``size``: image with 0, labels with ``ignore``, at a random spot."""
    c, h, w = image.shape
    r = int(torch.randint(0, size - h + 1, (1,), generator=generator))
    k = int(torch.randint(0, size - w + 1, (1,), generator=generator))
    out = image.new_zeros((c, size, size))
    lab = labels.new_full((size, size), ignore)
    out[:, r : r + h, k : k + w] = image
    lab[r : r + h, k : k + w] = labels
    return out, lab
