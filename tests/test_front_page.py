"""The README stays a front page, and the house map (docs/architecture.md) names the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "lale"
HOUSE_MAP = ROOT / "docs" / "architecture.md"
README_LIMIT = 10 * 1024


def _layout_block() -> str:
    section = HOUSE_MAP.read_text(encoding="utf-8").split("## Layout", 1)[1]
    return section.split("```", 2)[1].removeprefix("text")


def test_the_readme_is_a_front_page() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, (
        f"README.md is {size} bytes; the front page keeps to {README_LIMIT}"
    )
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for heading in ("## The two commands", "## Install", "## A tour"):
        assert heading in text, heading
    for link in re.findall(r"\]\(((?:docs|benchmarks)/[^)#]+)", text):
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_every_path_in_the_layout_exists() -> None:
    named = re.findall(r"^ {0,2}([\w./]+/?),?\s", _layout_block(), flags=re.M)
    assert named, "the layout section lists nothing"
    top = ("src/", "docs/", "tests/", "benchmarks/")
    missing = [n for n in named if not ((ROOT if n.startswith(top) else SRC) / n).exists()]
    assert not missing, f"docs/architecture.md's layout names paths that do not exist: {missing}"


def test_every_package_and_top_module_is_in_the_layout() -> None:
    block = _layout_block()
    names = {p.name + "/" for p in SRC.iterdir() if (p / "__init__.py").exists()}
    names |= {f"data/{p.name}/" for p in (SRC / "data").iterdir() if (p / "__init__.py").exists()}
    names |= {p.name for p in SRC.glob("*.py") if not p.name.startswith("_")} - {"__init__.py"}
    absent = sorted(n for n in names if n not in block)
    assert not absent, f"docs/architecture.md's layout does not mention: {absent}"


def test_the_start_here_table_points_at_real_files() -> None:
    table = HOUSE_MAP.read_text(encoding="utf-8").split("## Where to start reading", 1)[1]
    paths = re.findall(r"`([\w/]+(?:\.py|/))`", table)
    assert paths
    missing = [p for p in paths if "<" not in p and not (SRC / p).exists()]
    assert not missing, f"docs/architecture.md points at files that do not exist: {missing}"


def test_no_merge_conflict_markers_in_the_documents() -> None:
    documents = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("benchmarks/*.md")]
    markers = ("<<<<<<< ", "=======\n", ">>>>>>> ")
    for path in documents:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        bad = [i + 1 for i, line in enumerate(lines) if line.startswith(markers)]
        assert not bad, f"{path.name}: merge conflict markers at lines {bad}"
