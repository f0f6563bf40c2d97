"""The documentation's code blocks run as written: offline, each page in a fresh folder.

Every ``bash`` and ``python`` block of the README and of ``docs/`` is run here, in order, one
folder per page (so a page's blocks share the files its earlier blocks wrote), unless the line
before it is ``<!-- not run: REASON -->`` with a reason (a GPU, ARAS400k, a bucket). ``json``
and ``yaml`` blocks must parse. The README's tour is not run twice: each of its commands must
be a command of a docs block, run or marked.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```", re.M | re.S
)
NOT_RUN = re.compile(r"<!--\s*not run:(?P<reason>[^>]*)-->[ \t]*$", re.M)
RUN_LANGS = {"bash", "python"}
BLOCK_SECONDS = 300


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    not_run: str | None  # the reason, when the page says it cannot run here

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "scripts" not in p.parts)
    return [ROOT / "README.md", *docs]


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = NOT_RUN.search(before)
        code = textwrap.dedent(match.group("code"))
        lang = match.group("lang")
        found.append(
            Block(page, line, lang, code, marker.group("reason").strip() if marker else None)
        )
    return found


def runnable(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.lang in RUN_LANGS and b.not_run is None]


def commands(code: str) -> list[str]:
    """The ``lale`` commands of a block: continuations joined, comments, --no-progress dropped."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        words = re.sub(r"(^|\s)#.*$", "", line).split()
        if words[:1] == ["lale"]:
            found.append(" ".join(w for w in words if w != "--no-progress"))
    return found


def test_every_code_block_runs_or_says_why_not() -> None:
    counts = {"run": 0, "not run": 0, "parsed": 0}
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for marker in NOT_RUN.finditer(text):
            assert marker.group("reason").strip(), f"{page}: a not-run marker without a reason"
        marked = {b.line for b in blocks(page) if b.not_run is not None}
        assert len(marked) == len(NOT_RUN.findall(text)), (
            f"{page}: a not-run marker before no block"
        )
        for block in blocks(page):
            assert block.lang, f"{block.where()}: a code block without a language"
            if block.lang in RUN_LANGS:
                counts["run" if block.not_run is None else "not run"] += 1
            elif block.lang == "json":
                json.loads(block.code)
                counts["parsed"] += 1
            elif block.lang == "yaml":
                yaml.safe_load(block.code)
                counts["parsed"] += 1
            elif block.lang == "toml":
                tomllib.loads(block.code)
                counts["parsed"] += 1
    print(f"doc code blocks: {counts}")
    assert counts["run"] >= 20, counts


def test_the_readme_tour_is_made_of_documented_commands() -> None:
    (tour,) = [b for b in blocks(ROOT / "README.md") if "lale synth" in b.code]
    documented = {
        command
        for page in pages()[1:]
        for block in blocks(page)
        if block.lang == "bash"
        for command in commands(block.code)
    }
    run = {
        command
        for page in pages()[1:]
        for block in runnable(page)
        if block.lang == "bash"
        for command in commands(block.code)
    }
    tour_commands = commands(tour.code)
    assert len(tour_commands) >= 6
    missing = [c for c in tour_commands if c not in documented]
    assert not missing, f"README tour commands no docs page shows: {missing}"
    not_run = [c for c in tour_commands if c not in run]
    assert not_run == ["lale benchmark --preset quick --out runs/quick"], not_run


def _environment(bin_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(HF_HUB_OFFLINE="1", MPLBACKEND="Agg", COLUMNS="120", PYTHONUNBUFFERED="1")
    return env


RUN_PAGES = [p for p in pages() if runnable(p)]


@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUN_PAGES])
def test_the_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    env = _environment(Path(sys.executable).parent)
    for block in runnable(page):
        if block.lang == "bash":
            argv = ["bash", "-euo", "pipefail", "-c", block.code]
        else:
            argv = [sys.executable, "-c", block.code]
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=BLOCK_SECONDS
        )
        assert done.returncode == 0, (
            f"{block.where()} exited {done.returncode}\n{block.code}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                found = getattr(found, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_lale_name_the_docs_cite_exists() -> None:
    """A module or name the docs cite as ``lale.x.y`` imports: moved code moves its docs."""
    cited = {
        name
        for page in pages()
        for name in re.findall(r"`(lale(?:\.\w+)+)", page.read_text(encoding="utf-8"))
    }
    assert len(cited) >= 10, cited
    missing = sorted(name for name in cited if not _resolves(name))
    assert not missing, f"the docs cite names that do not import: {missing}"
