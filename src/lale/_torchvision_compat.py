"""Let ``import torchvision`` work when torchvision's compiled extension cannot load.

PyPI's Linux torchvision wheel (0.28.0) is a CUDA build; next to a CPU-only torch its extension
cannot load and ``import torchvision`` raises. :func:`install` then defines the schemas of
``torchvision::nms`` and ``qnms`` (no kernels), and does nothing where the extension loads;
:func:`write_pth` adds an import hook for other interpreters
(docs/design.md#torchvision-next-to-a-cpu-only-torch).

Remove this module, its callers and the ``.pth`` hook once torchvision's extension loads next to
the supported torch: when PyPI's Linux torchvision wheel is built against the CPU torch wheel, or
when torchvision is installed from the same index as torch (``torchvision==0.28.0+cpu`` from the
PyTorch CPU index next to ``torch==2.13.0+cpu``).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The schemas exactly as torchvision 0.28 declares them (strings in its _C library, csrc/ops).
SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
PTH_NAME = "lale-torchvision-compat.pth"

# Keeps the schema definitions alive: they are removed when the Library is garbage-collected.
_LIBRARY: Any = None


def extension_path() -> Path | None:
    """Path of torchvision's ``_C`` extension, found without importing torchvision.

    Returns:
        The file, or ``None`` when torchvision (or its extension) is not installed.
    """
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    loader = (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES)
    for location in spec.submodule_search_locations:
        ext = importlib.machinery.FileFinder(location, loader).find_spec("_C")
        if ext is not None and ext.origin:
            return Path(ext.origin)
    return None


def _schemas_defined() -> bool:
    import torch

    return all(hasattr(torch.ops.torchvision, s.split("(", 1)[0]) for s in SCHEMAS)


def install() -> bool:
    """Make torchvision importable; a no-op wherever its extension loads. Idempotent.

    Returns:
        ``True`` if lale defined the placeholder schemas (now or in an earlier call),
        ``False`` if nothing was needed.
    """
    global _LIBRARY
    _remove_hooks()  # done now; also keeps find_spec below from re-entering through the hook
    if _LIBRARY is not None:
        return True
    path = extension_path()
    if path is None or _schemas_defined():
        return False
    import torch

    try:
        torch.ops.load_library(str(path))  # exactly what torchvision itself does next
        return False
    except (OSError, ImportError):
        pass
    library = torch.library.Library("torchvision", "FRAGMENT")
    for schema in SCHEMAS:
        library.define(schema)
    _LIBRARY = library
    return True


class _ImportHook(importlib.abc.MetaPathFinder):
    """Calls :func:`install` once, when ``torchvision`` is first imported; finds nothing."""

    # Recognised by this marker, not by class: the .pth loads a separate copy of this module.
    lale_torchvision_hook = True

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "torchvision":
            install()
        return None


def _is_hook(finder: object) -> bool:
    return getattr(finder, "lale_torchvision_hook", False) is True


def _remove_hooks() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not _is_hook(f)]


def register_hook() -> None:
    """Add the import hook to ``sys.meta_path`` (once). Cheap: imports neither torch nor lale."""
    if "torchvision" not in sys.modules and not any(_is_hook(f) for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportHook())


def pth_line(module_file: str | Path = __file__) -> str:
    """The single line of ``lale-torchvision-compat.pth``.

    It loads this file by path, not as ``lale._torchvision_compat``, because importing the
    ``lale`` package imports torch; it does nothing if the file is gone (lale moved or removed).
    """
    path = str(Path(module_file).resolve())
    # The module is registered in sys.modules so that it, and the schemas its install() may
    # define, stay alive after the hook has removed itself from sys.meta_path.
    return (
        f"import importlib.util as u, os, sys; p = {path!r}; "
        "s = os.path.exists(p) and u.spec_from_file_location('_lale_torchvision_hook', p); "
        "m = s and u.module_from_spec(s); "
        "m and (sys.modules.setdefault('_lale_torchvision_hook', m), "
        "s.loader.exec_module(m), m.register_hook())\n"
    )


def write_pth(site_packages: str | Path | None = None) -> Path:
    """Write ``lale-torchvision-compat.pth`` so every interpreter there gets the import hook.

    Args:
        site_packages: Target directory; defaults to this interpreter's site-packages.

    Returns:
        The path written.
    """
    directory = Path(site_packages or sysconfig.get_paths()["purelib"])
    target = directory / PTH_NAME
    target.write_text(pth_line(), encoding="utf-8")
    return target
