"""The shape of ``src/lale``: no import cycles, no module over 400 lines, layers imported downwards.

The import graph is read from the source with :mod:`ast` (nothing is imported). An edge is an
``import`` or ``from … import`` of a lale module, at one of three places: at module level (what
runs on import, class bodies included), under ``if TYPE_CHECKING:`` (annotations only), or inside
a function (a lazy import). Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``,
so the cycle checks count those packages too (except the importer's own parents, which are
already loading). Names that ``__init__`` files load by ``importlib`` on first use
(``lale``, ``lale.inference``, ``lale.data.prepare``) are not imports here.
"""

from __future__ import annotations

import ast
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "lale"
MAX_LINES = 400

# The layers of lale, lowest first: a unit (a subpackage, or a module at src/lale's top level)
# imports only units of lower layers, at module level, under TYPE_CHECKING or in a function.
# The package root ``lale`` (the version; create_model and list_models loaded from models on
# first use) stands outside the layers: hub imports it for the version.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Foundation: import nothing of lale.
    ("errors", "atomic", "run_layout", "formatting", "progress", "_torchvision_compat"),
    # Built on the foundation only: output paths checked up front (errors), safetensors I/O
    # (atomic writes, errors).
    ("output_paths", "weights"),
    # The networks, and the data; neither imports training, inference, benchmark, maps or cli.
    ("models", "data"),
    # Profiling measures models; the recipe holds the augmentation settings of data.augment.
    ("profiling", "recipe"),
    # A run's config.json (recipe, data's schema, models' defaults, profiling's versions); the
    # Hub upload (models, run_layout).
    ("run_config", "hub"),
    # Run directories: config, weights, models.
    ("runs",),
    ("training", "inference"),
    # Benchmarks train and score runs; map products are built from inference's area tables.
    ("benchmark", "maps"),
    # Federations train with training's loop and judge "learned" by the benchmark's rule.
    ("federated",),
    # The demo runs a benchmark.
    ("demo",),
    ("cli",),
)

# Imports that go against LAYERS, each for a reason; (importer, imported module).
LAYER_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("lale.models.padding", "lale.inference.pad"): (
        "the padding rule lives once, in numpy, where torch-free inference reads it; it cannot "
        "live under lale.models, whose __init__ imports torch"
    ),
    ("lale.inference.onnx.calibration", "lale.training.sampling"): (
        "int8 calibration draws the same seeded crops as training (seeded_crops), lazily"
    ),
    ("lale.inference.onnx.quantize", "lale.training.evaluate"): (
        "the int8 export is scored against the fp32 one as training tests a run (evaluate_run), "
        "lazily"
    ),
}

# The parts of lale.data, lowest first, with the same rule; "core" is lale.data's own modules
# (dataset, collate, transforms, augment, stats, folder).
DATA_LAYERS: tuple[tuple[str, ...], ...] = (
    ("schema",),  # class schemas, lookup tables, the image format
    ("io",),  # files and their folder layout, rasters, remote inputs (reads schemas)
    ("shards", "prepare"),  # shard sets; preparation from rasters (both read through io)
    ("core", "synthetic"),  # the torch dataset reads shards; synthetic uses prepare's splits
    ("survey",),  # mask audits and schema drafts (read through the dataset and shards)
)


@dataclass(frozen=True)
class Import:
    """One import of a lale module: where it is written, and at which place."""

    importer: str
    target: str
    path: Path
    line: int
    place: str  # "module", "type" (under TYPE_CHECKING) or "function"

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is a lale module."""
    parts = name.split(".")
    while parts:
        if (candidate := ".".join(parts)) in MODULES:
            return candidate
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, path: Path) -> None:
        self.module, self.path = module, path
        self.package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        self.place = "module"
        self.found: list[Import] = []

    def _within(self, place: str, nodes: list[ast.stmt]) -> None:
        outer, self.place = self.place, place
        for node in nodes:
            self.visit(node)
        self.place = outer

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.visit(node.test)
            self._within("type" if self.place == "module" else self.place, node.body)
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._within("function", node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def _add(self, name: str, node: ast.stmt) -> None:
        target = _known(name)
        if target is not None and target != self.module:
            self.found.append(Import(self.module, target, self.path, node.lineno, self.place))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        submodules = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in MODULES]
        if len(submodules) < len(node.names):  # names defined by the module itself
            self._add(source, node)
        for name in submodules:
            self._add(name, node)


def _imports() -> list[Import]:
    found: list[Import] = []
    for module, path in MODULES.items():
        collector = _Collector(module, path)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        found += collector.found
    return found


IMPORTS = _imports()


def _graph(places: set[str]) -> dict[str, dict[str, Import]]:
    """Module → imported module → the first import that makes the edge.

    An import of ``a.b.c`` is an edge to ``a.b.c`` and to the packages ``a`` and ``a.b`` (their
    ``__init__`` runs first), except those the importer lives in.
    """
    graph: dict[str, dict[str, Import]] = {m: {} for m in MODULES}
    for imp in IMPORTS:
        if imp.place not in places:
            continue
        parts = imp.target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in MODULES and not (imp.importer + ".").startswith(name + "."):
                graph[imp.importer].setdefault(name, imp)
    return graph


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """One shortest cycle through each strongly connected group of modules (Tarjan + BFS)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:
        start = min(group)
        previous: dict[str, str] = {}
        queue = deque([start])
        while queue:
            v = queue.popleft()
            if start in graph[v]:
                chain = [v]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                cycles.append([*reversed(chain), start])
                break
            for w in sorted(graph[v]):
                if w in group and w not in previous and w != start:
                    previous[w] = v
                    queue.append(w)
    return cycles


def _describe(cycles: list[list[str]], graph: dict[str, dict[str, Import]]) -> str:
    lines = []
    for chain in cycles:
        lines.append(" → ".join(chain))
        for a, b in itertools.pairwise(chain):
            imp = graph[a][b]
            via = "" if imp.target == b else f" (importing {imp.target} runs {b})"
            lines.append(f"    {imp.where()}: {a} imports {b}{via}")
    return "\n".join(lines)


def test_no_import_cycle_at_module_level() -> None:
    graph = _graph({"module"})
    cycles = _cycles(graph)
    assert not cycles, "import cycles at module level:\n" + _describe(cycles, graph)


def test_no_import_cycle_even_through_type_checking_and_lazy_imports() -> None:
    """A cycle that only an ``if TYPE_CHECKING:`` block or a function-level import keeps from
    failing at import time is still a cycle in the design: the shared piece belongs lower."""
    graph = _graph({"module", "type", "function"})
    cycles = _cycles(graph)
    assert not cycles, "import cycles (counting every import):\n" + _describe(cycles, graph)


def test_no_module_over_the_line_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in MODULES.values()
    }
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by role): {over}"


def _unit(module: str) -> str | None:
    """The layer unit of a module: its subpackage or top-level module of lale (None: ``lale``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _data_unit(module: str) -> str | None:
    """The part of lale.data a module belongs to (None: outside lale.data)."""
    parts = module.split(".")
    if parts[:2] != ["lale", "data"]:
        return None
    if len(parts) > 3 or (len(parts) == 3 and MODULES[module].name == "__init__.py"):
        return parts[2]
    return "core"


def _rank(layers: tuple[tuple[str, ...], ...]) -> dict[str, int]:
    return {unit: i for i, layer in enumerate(layers) for unit in layer}


def _layer_problems(
    layers: tuple[tuple[str, ...], ...], unit: Callable[[str], str | None], what: str
) -> tuple[list[str], set[tuple[str, str]]]:
    """The imports from a unit to one of the same or a higher layer, and the excused ones."""
    rank = _rank(layers)
    problems, excused = [], set()
    for imp in IMPORTS:
        a, b = unit(imp.importer), unit(imp.target)
        if a is None or b is None or a == b:
            continue
        if rank[b] < rank[a]:
            continue
        if (imp.importer, imp.target) in LAYER_EXCEPTIONS:
            excused.add((imp.importer, imp.target))
            continue
        problems.append(
            f"{imp.where()}: {imp.importer} imports {imp.target} ({what} {a!r}, layer {rank[a]}, "
            f"may only import lower layers; {b!r} is layer {rank[b]})"
        )
    return problems, excused


def test_every_unit_has_a_layer() -> None:
    units = {u for m in MODULES if (u := _unit(m)) is not None}
    data_units = {u for m in MODULES if (u := _data_unit(m)) is not None}
    assert units - set(_rank(LAYERS)) == set(), "place these in LAYERS"
    assert data_units - set(_rank(DATA_LAYERS)) == set(), "place these in DATA_LAYERS"
    assert set(_rank(LAYERS)) <= units and set(_rank(DATA_LAYERS)) <= data_units, "stale names"


def test_lale_layers_import_downwards() -> None:
    problems, excused = _layer_problems(LAYERS, _unit, "unit")
    assert not problems, "imports against the layers of lale:\n" + "\n".join(problems)
    stale = set(LAYER_EXCEPTIONS) - excused
    assert not stale, f"layer exceptions no longer needed (remove them): {sorted(stale)}"


def test_data_subpackages_import_downwards() -> None:
    problems, _ = _layer_problems(DATA_LAYERS, _data_unit, "lale.data part")
    assert not problems, "imports against the order of lale.data:\n" + "\n".join(problems)


def test_the_graph_sees_imports() -> None:
    """The checks above would pass on an empty graph: make sure it is not one."""
    edges = {(i.importer, i.target, i.place) for i in IMPORTS}
    assert ("lale.data.dataset", "lale.data.shards", "module") in edges
    assert ("lale.inference.predict", "lale.run_config", "module") in edges
    assert any(i.place == "type" for i in IMPORTS) and any(i.place == "function" for i in IMPORTS)
    graph = _graph({"module"})
    assert "lale.data.io" in graph["lale.data.shards.store"]  # implicit: the package's __init__
    looped = {"a": {"b": IMPORTS[0]}, "b": {"a": IMPORTS[0]}, "c": {}}
    assert _cycles(looped) == [["a", "b", "a"]]
