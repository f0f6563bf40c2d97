"""The README's layout section names what is in the tree, and every package is named there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layout_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def test_every_path_in_the_layout_exists() -> None:
    block = _layout_block()
    named = re.findall(r"^ {0,2}([\w./]+/?),?\s", block, flags=re.M)
    assert named, "the layout section lists nothing"
    missing = []
    for name in named:
        base = (
            ROOT / "src" / "lale"
            if not name.startswith(("src/", "docs/", "tests/", "benchmarks/"))
            else ROOT
        )
        if not (base / name).exists():
            missing.append(name)
    assert not missing, f"README layout names paths that do not exist: {missing}"


def test_every_subpackage_and_top_module_is_in_the_layout() -> None:
    block = _layout_block()
    pkg = ROOT / "src" / "lale"
    names = {p.name + "/" for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    names |= {
        p.name for p in pkg.glob("*.py") if not p.name.startswith("_") and p.name != "__init__.py"
    }
    absent = sorted(n for n in names if n not in block)
    assert not absent, f"README layout does not mention: {absent}"


def test_no_merge_conflict_markers_in_the_documents() -> None:
    documents = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("benchmarks/*.md")]
    markers = ("<<<<<<< ", "=======\n", ">>>>>>> ")
    for path in documents:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        bad = [i + 1 for i, line in enumerate(lines) if line.startswith(markers)]
        assert not bad, f"{path.name}: merge conflict markers at lines {bad}"
