"""Reading what datasets and scenes are made of: image and mask files, rasters, remote inputs.

- :mod:`lale.data.io.files` — file types, opening (Pillow, rasterio) and headers;
- :mod:`lale.data.io.read` — images as ``C×H×W`` arrays, masks as class labels;
- :mod:`lale.data.io.layout` — the ``ROOT/{split}/{images,masks}`` folder layout, pairs by stem;
- :mod:`lale.data.io.encoded` — files held as their encoded bytes (in a shard set);
- :mod:`lale.data.io.complete` — truncation checks of PNG, JPEG and TIFF files;
- :mod:`lale.data.io.bands` — band lists as users type them;
- :mod:`lale.data.io.png` — the PNG encoder for the patches lale writes;
- :mod:`lale.data.io.rasters` — windowed raster reading, 8-bit scaling, label warping;
- :mod:`lale.data.io.remote` — rasters read over HTTP(S) and from object stores.

Above :mod:`lale.data.schema`, below every other part of :mod:`lale.data`. The names of
:mod:`~lale.data.io.files` and :mod:`~lale.data.io.read` are importable from here (rasterio
loads only when a GeoTIFF is read).
"""

from __future__ import annotations

from lale.data.io.files import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    PIL_READ_ERRORS,
    ImageHeader,
    Window,
    check_image_info,
    is_geotiff,
    png16_array,
    read_info,
)
from lale.data.io.read import MaskData, read_image, read_image_alpha, read_mask
from lale.errors import DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "PIL_READ_ERRORS",
    "DataError",
    "ImageHeader",
    "MaskData",
    "Window",
    "check_image_info",
    "is_geotiff",
    "png16_array",
    "read_image",
    "read_image_alpha",
    "read_info",
    "read_mask",
]
