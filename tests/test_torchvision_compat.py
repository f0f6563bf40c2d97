"""lale._torchvision_compat: torchvision imports next to CPU torch, and nothing changes elsewhere.

Each scenario that depends on interpreter-wide state (defined operators, imported modules)
runs in a fresh interpreter of this environment (``sys.executable``).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from lale import _torchvision_compat as compat

NMS_SCHEMA = "torchvision::nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"


def run_python(code: str, *, site_dir: Path | None = None) -> str:
    """Run ``code`` in a fresh interpreter (optionally with ``site_dir``'s .pth files); stdout."""
    prefix = f"import site; site.addsitedir({str(site_dir)!r})\n" if site_dir else ""
    result = subprocess.run(
        [sys.executable, "-c", prefix + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_install_makes_timm_smp_and_torchvision_importable() -> None:
    out = run_python(
        """
        import lale._torchvision_compat as compat
        compat.install()
        import timm, segmentation_models_pytorch, torchvision
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_pth_hook_is_lazy_and_fixes_plain_imports(tmp_path: Path) -> None:
    pth = compat.write_pth(tmp_path)
    assert pth.name == compat.PTH_NAME
    assert pth.read_text().count("\n") == 1
    out = run_python(
        """
        import sys
        def hooks():
            return sum(getattr(f, "lale_torchvision_hook", False) for f in sys.meta_path)
        print(hooks(), "torch" in sys.modules, "lale" in sys.modules)
        import timm, segmentation_models_pytorch, torchvision
        print(hooks())
        """,
        site_dir=tmp_path,
    )
    # One hook, neither torch nor lale imported at start-up; the hook removes itself once used.
    assert out.split() == ["1", "False", "False", "0"]


def test_schemas_outlive_the_hook(tmp_path: Path) -> None:
    # torch.export looks torchvision up without importing it: the hook fires and removes
    # itself; the schemas it defined must survive garbage collection for a later import.
    # -S keeps this venv's own .pth (written by make install) out: only the test's hook runs.
    compat.write_pth(tmp_path)
    purelib = sysconfig.get_paths()["purelib"]
    code = (
        f"import sys; sys.path.append({purelib!r})\n"
        f"import site; site.addsitedir({str(tmp_path)!r})\n"
        "import gc, importlib.util\n"
        "importlib.util.find_spec('torchvision')\n"
        "gc.collect()\n"
        "import torchvision\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ok"]


def test_pth_line_is_harmless_when_lale_is_gone(tmp_path: Path) -> None:
    (tmp_path / compat.PTH_NAME).write_text(compat.pth_line(tmp_path / "missing.py"))
    code = f"import site; site.addsitedir({str(tmp_path)!r}); print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "ok"
    assert result.stderr == ""


def test_register_hook_is_idempotent() -> None:
    out = run_python(
        """
        import sys
        import lale._torchvision_compat as compat
        compat.register_hook()
        compat.register_hook()
        print(sum(compat._is_hook(f) for f in sys.meta_path))
        """
    )
    assert out.split() == ["1"]


def test_loadable_extension_means_nothing_is_defined() -> None:
    # Simulates a normal (matching CPU or CUDA) install: the extension loads, so install()
    # must neither define the schemas nor keep a Library.
    out = run_python(
        """
        import torch
        import lale._torchvision_compat as compat
        loaded = []
        torch.ops.load_library = loaded.append
        print(compat.install(), compat._LIBRARY is None, len(loaded))
        print(hasattr(torch.ops.torchvision, "nms"), hasattr(torch.ops.torchvision, "qnms"))
        """
    )
    assert out.split() == ["False", "True", "1", "False", "False"]


def test_failed_load_defines_both_schemas_once() -> None:
    out = run_python(
        """
        import torch
        import lale._torchvision_compat as compat
        def fail(path):
            raise OSError("Could not load this library: " + path)
        torch.ops.load_library = fail
        print(hasattr(torch.ops.torchvision, "nms"))
        print(compat.install())
        library = compat._LIBRARY
        print(compat.install(), compat._LIBRARY is library)
        print(torch.ops.torchvision.nms.default._schema)
        print(torch.ops.torchvision.qnms.default._schema.name)
        """
    )
    lines = out.splitlines()
    assert lines[:3] == ["False", "True", "True True"]
    assert lines[3] == NMS_SCHEMA
    assert lines[4] == "torchvision::qnms"


def test_install_without_torchvision_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "_LIBRARY", None)
    monkeypatch.setattr(compat, "extension_path", lambda: None)
    assert compat.install() is False
    assert compat._LIBRARY is None


def test_extension_path_is_found_without_importing_torchvision() -> None:
    out = run_python(
        """
        import sys
        import lale._torchvision_compat as compat
        path = compat.extension_path()
        print(path is not None and path.name.startswith("_C"), "torchvision" in sys.modules)
        """
    )
    assert out.split() == ["True", "False"]
