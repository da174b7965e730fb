"""Import direction: every unit of the package imports only units in earlier layers.

A *unit* is a subpackage folder (``data``, ``classifier``, ...) or a root module (``io``,
``manifest``, ...). The package is read with :mod:`ast`, never imported, so the test is fast
and cannot be fooled by import order. Imports inside functions (lazy imports) count the same
as module-level ones: they still tie the two units together. ``docs/dev/CONTRACTS.md`` states
the same order for readers.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "feraug"

#: Earliest first; a unit may import units of its own layer and of earlier ones.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("base", frozenset({"errors", "emotions", "io", "progress", "bundled", "devices"})),
    ("data", frozenset({"data"})),
    # Markdown, HTML, figures and the interval statistics know nothing of training or
    # experiments, and training, scoring and experiment use them, so they sit low.
    ("report helpers", frozenset({"reporting"})),
    # The run engine's pieces that live at the package root.
    ("run helpers", frozenset({"finite", "manifest", "resume", "tensorboard"})),
    ("networks", frozenset({"models", "gan"})),
    # Device, run folder, log and RNG state for any training run, and the generator loop:
    # generators are a task run on it, so it sits above the networks it trains.
    ("engine", frozenset({"engine"})),
    # Classifier fitting, inference and evaluation.
    ("classifier", frozenset({"classifier"})),
    ("classifier users", frozenset({"synth", "predict", "export"})),
    ("scoring", frozenset({"scoring"})),
    ("experiment", frozenset({"experiment"})),
    ("demo", frozenset({"demo"})),
    ("cli", frozenset({"cli", "__main__"})),
)

#: Upward imports tolerated for now: (importing file under src/feraug, imported module) -> why
#: it is there and what would remove it. An entry that no longer matches an upward import
#: fails the test, so the list only shrinks. The cycle check still sees these imports.
ALLOWED: dict[tuple[str, str], str] = {}

#: The package's ``__init__``: Python runs it before any submodule, and at import time it only
#: defines ``__version__``, so importing it is free. Its own imports make up the lazy public
#: facade (``feraug.fit``, ``feraug.predict``, ...), which reaches every layer by design.
PACKAGE_ROOT = "feraug"


@dataclass(frozen=True)
class Import:
    """One ``import feraug...`` / ``from feraug... import`` statement (one per named module)."""

    file: str  # path under src/feraug
    line: int
    module: str  # the imported module, e.g. feraug.engine.device
    lazy: bool  # inside a function body

    @property
    def where(self) -> str:
        """``src/feraug/<file>:<line>``, as an editor or a traceback names it."""
        return f"src/feraug/{self.file}:{self.line}"


def unit_of(module: str) -> str:
    """The unit a ``feraug.x.y`` module belongs to (``x``); the package root for ``feraug``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE_ROOT


def _module_name(path: Path) -> tuple[str, bool]:
    """Dotted name of a source file and whether it is a package ``__init__``."""
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The ``feraug`` modules a statement imports (names imported from a package that are
    its submodules count as those submodules)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: resolve against this file's package
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source == PACKAGE_ROOT:
        return [f"{source}.{alias.name}" if _is_unit(alias.name) else source
                for alias in node.names]
    return [source]


def _is_unit(name: str) -> bool:
    """True when ``name`` is a subpackage or root module of the package."""
    return (PKG / name).is_dir() or (PKG / f"{name}.py").is_file()


def _lazy_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside function bodies."""
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(n) for n in ast.walk(fn) if n is not fn)
    return inside


def file_imports(text: str, rel: str) -> list[Import]:
    """The feraug imports in the source ``text`` of the file ``rel`` (path under src/feraug)."""
    module, is_package = _module_name(PKG / rel)
    tree = ast.parse(text, filename=rel)
    lazy = _lazy_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in _targets(node, module, is_package):
            if target == PACKAGE_ROOT or target.startswith(PACKAGE_ROOT + "."):
                found.append(Import(rel, node.lineno, target, id(node) in lazy))
    return sorted(found, key=lambda i: (i.line, i.module))


def package_imports() -> list[Import]:
    """Every import of a feraug module in src/feraug, in file and line order."""
    found: list[Import] = []
    for path in sorted(PKG.rglob("*.py")):
        found += file_imports(path.read_text(encoding="utf-8"), path.relative_to(PKG).as_posix())
    return sorted(found, key=lambda i: (i.file, i.line, i.module))


def code_units() -> set[str]:
    """The units present in the source tree (the package root excluded)."""
    units = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    units |= {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    return units


def layer_index() -> dict[str, int]:
    """Unit -> position of its layer in :data:`LAYERS`."""
    return {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def file_unit(file: str) -> str:
    """The unit a file under src/feraug belongs to."""
    first = file.split("/")[0]
    return PACKAGE_ROOT if first == "__init__.py" else first.removesuffix(".py")


def upward_imports() -> list[Import]:
    """Imports whose target unit lies in a later layer than the importing unit."""
    index = layer_index()
    upward = []
    for imp in package_imports():
        source, target = file_unit(imp.file), unit_of(imp.module)
        if PACKAGE_ROOT in (source, target) or not {source, target} <= index.keys():
            continue  # the package root is exempt; unplaced units fail the test above
        if index[target] > index[source]:
            upward.append(imp)
    return upward


def _describe(imp: Import) -> str:
    """One failure line: where the import is, what it imports, and which layers clash."""
    index, names = layer_index(), [name for name, _ in LAYERS]
    source, target = file_unit(imp.file), unit_of(imp.module)
    return (f"{imp.where} imports {imp.module}{' (lazy)' if imp.lazy else ''}: "
            f"{source} (layer {names[index[source]]!r}) may not import {target} "
            f"(later layer {names[index[target]]!r})")


def test_every_unit_is_in_exactly_one_layer() -> None:
    listed = [unit for _, units in LAYERS for unit in units]
    twice = sorted({u for u in listed if listed.count(u) > 1})
    assert not twice, f"units in more than one layer: {twice}"
    missing = sorted(code_units() - set(listed))
    assert not missing, (f"src/feraug has units no layer names: {missing}; add each to the "
                         "layer it belongs to in LAYERS (and docs/dev/CONTRACTS.md)")
    gone = sorted(set(listed) - code_units())
    assert not gone, f"LAYERS names units that no longer exist: {gone}; remove them"


def test_no_upward_imports() -> None:
    bad = [_describe(imp) for imp in upward_imports()
           if (imp.file, imp.module) not in ALLOWED]
    assert not bad, "imports against the layer order (docs/dev/CONTRACTS.md):\n" + "\n".join(bad)


def test_allow_list_has_no_stale_entries() -> None:
    present = {(imp.file, imp.module) for imp in upward_imports()}
    stale = sorted(f"src/feraug/{file} -> {module}" for file, module in ALLOWED
                   if (file, module) not in present)
    assert not stale, ("ALLOWED lists imports that are no longer upward imports; delete "
                       "these entries:\n" + "\n".join(stale))


def test_units_import_each_other_without_cycles() -> None:
    # Units of one layer may import each other, so a cycle is still possible; it would make
    # the order meaningless. Every import counts, ALLOWED ones too: a tolerated upward import
    # that closes a cycle ties the units together in both directions, which the layer order
    # exists to prevent.
    edges: dict[str, dict[str, Import]] = {}
    for imp in package_imports():
        source, target = file_unit(imp.file), unit_of(imp.module)
        if source != target and PACKAGE_ROOT not in (source, target):
            edges.setdefault(source, {}).setdefault(target, imp)
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> list[str] | None:
        """The first cycle reachable from ``unit`` (depth first), as a list of units."""
        if unit in path:
            return path[path.index(unit):] + [unit]
        if unit in done:
            return None
        for target in sorted(edges.get(unit, {})):
            if cycle := visit(target, [*path, unit]):
                return cycle
        done.add(unit)
        return None

    for unit in sorted(edges):
        cycle = visit(unit, [])
        assert cycle is None, "units import each other in a cycle:\n" + "\n".join(
            f"{edges[a][b].where} imports {edges[a][b].module}"
            for a, b in pairwise(cycle))


def test_the_scan_sees_every_kind_of_import() -> None:
    # Guards the scanner itself: an import form it missed would hide an upward import.
    text = """
from feraug import __version__, data
from feraug.io import write_json
from . import plan
from ..classifier import engine
if TYPE_CHECKING:
    import feraug.models.ensemble as ens
def later():
    from feraug.gan.base import load_generator
"""
    found = [(i.line, i.module, i.lazy) for i in file_imports(text, "synth/build.py")]
    assert found == [(2, "feraug", False), (2, "feraug.data", False),
                     (3, "feraug.io", False), (4, "feraug.synth", False),
                     (5, "feraug.classifier", False), (7, "feraug.models.ensemble", False),
                     (9, "feraug.gan.base", True)], found
