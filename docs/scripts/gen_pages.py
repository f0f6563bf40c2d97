"""Pages the docs site generates at build time: command reference, API reference, results.

Run by the mkdocs-gen-files plugin (``mkdocs.yml``). Nothing here is written into ``docs/``:
the pages exist only in the built site, so they cannot drift from the code they describe.

- ``reference/cli/*.md``: one page per ``lale`` command, from the click objects typer builds
  (usage, help text, every argument and option with its default), so a page says what
  ``lale COMMAND --help`` says.
- ``reference/api/*.md``: one mkdocstrings page per public module of ``src/lale``.
- ``results/``: ``benchmarks/README.md`` and every recorded result (Markdown and figures) of
  ``benchmarks/results/``, with an index that shows each figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mkdocs_gen_files
import typer
from typer.core import TyperArgument, TyperOption

from lale.cli import app

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
RESULTS = ROOT / "benchmarks" / "results"


def _commands(group: Any, prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = (*prefix, name)
        if hasattr(command, "list_commands"):
            found.extend(_commands(command, path))
        else:
            found.append((path, command))
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def command_page(path: tuple[str, ...], command: Any) -> str:
    """The reference page of one command: what ``--help`` prints, as Markdown."""
    ctx = typer.Context(command, info_name=" ".join(("lale", *path)))
    lines = [f"# lale {' '.join(path)}", "", (command.help or "").strip(), ""]
    lines += [
        "```text",
        " ".join(command.collect_usage_pieces(ctx)).join([f"{ctx.info_name} ", ""]),
        "```",
        "",
    ]
    for kind, heading in ((TyperArgument, "argument"), (TyperOption, "option")):
        records = [
            p.get_help_record(ctx) for p in command.params if isinstance(p, kind) and not p.hidden
        ]
        rows = [f"| `{_cell(names)}` | {_cell(what)} |" for names, what in filter(None, records)]
        if rows:
            lines += [f"| {heading} | what |", "|---|---|", *rows, ""]
    if command.epilog:
        lines += [command.epilog.strip(), ""]
    return "\n".join(lines)


def cli_reference() -> None:
    root = typer.main.get_command(app)
    index = ["# Commands", "", "Every `lale` command, as `lale COMMAND --help` prints it.", ""]
    for path, command in _commands(root, ()):
        name = "-".join(path)
        with mkdocs_gen_files.open(f"reference/cli/{name}.md", "w") as page:
            page.write(command_page(path, command))
        summary = _cell((command.help or "").split("\n\n")[0])
        index.append(f"- [`lale {' '.join(path)}`]({name}.md): {summary}")
    with mkdocs_gen_files.open("reference/cli/index.md", "w") as page:
        page.write("\n".join(index) + "\n")


def api_reference() -> None:
    index = ["# Python API", "", "Every module of the `lale` package, from its docstrings.", ""]
    for source in sorted((SRC / "lale").rglob("*.py")):
        parts = source.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__main__" or any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        doc = f"reference/api/{module}.md"
        with mkdocs_gen_files.open(doc, "w") as page:
            page.write(f"# `{module}`\n\n::: {module}\n")
        mkdocs_gen_files.set_edit_path(doc, source.relative_to(ROOT))
        index.append(f"- [`{module}`]({module}.md)")
    with mkdocs_gen_files.open("reference/api/index.md", "w") as page:
        page.write("\n".join(index) + "\n")


def results() -> None:
    index = [
        "# Recorded results",
        "",
        "Every number the documentation quotes comes from one of these files, written by a",
        "script in `benchmarks/` ([what each script measures](scripts.md)); each records its",
        "device, dtype, thread count and library versions.",
        "",
    ]
    for source in sorted(RESULTS.rglob("*")):
        if source.suffix not in {".md", ".png"}:
            continue
        rel = source.relative_to(RESULTS).as_posix()
        with mkdocs_gen_files.open(f"results/{rel}", "wb") as out:
            out.write(source.read_bytes())
        if source.suffix == ".md":
            title = source.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
            index.append(f"- [{title}]({rel}) (`benchmarks/results/{rel}`)")
    figures = sorted(p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*.png"))
    index += ["", "## Figures", ""]
    index += [f"![{rel}]({rel})\n\n`benchmarks/results/{rel}`\n" for rel in figures]
    with mkdocs_gen_files.open("results/index.md", "w") as page:
        page.write("\n".join(index) + "\n")
    with mkdocs_gen_files.open("results/scripts.md", "w") as page:
        page.write((ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8"))


cli_reference()
api_reference()
results()
