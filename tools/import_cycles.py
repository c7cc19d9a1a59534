"""Print the import cycles among audit's modules; exit 1 when there is one.

    python tools/import_cycles.py

Every ``import`` counts, at module level or inside a function (a lazy import still ties the two modules together);
imports under ``if TYPE_CHECKING:`` do not. Modules are found from the installed package (``audit.checks`` and
``audit.reports`` live in checks/ and reports/ through setuptools' package-dir mapping, which graph tools that walk
one folder do not follow). Cycles are the strongly connected components of the graph (scipy).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

ROOT = "audit"


def _packages(root: str) -> list[str]:
    """The root package and the packages pyproject.toml maps from other folders (package-dir)."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    names = [root]
    if root == ROOT and pyproject.is_file():
        import tomllib

        mapped = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("setuptools", {})
        names += [n for n in mapped.get("package-dir", {}) if n.startswith(root + ".")]
    return names


def modules(root: str = ROOT) -> dict[str, Path]:
    """Module name → source file, for the package, every subpackage and every mapped package."""
    out: dict[str, Path] = {}
    for name in _packages(root):
        pkg = importlib.import_module(name)
        out[name] = Path(pkg.__file__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=name + "."):
            spec = importlib.util.find_spec(info.name)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                out[info.name] = Path(spec.origin)
    return out


def _type_checking_only(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The audit modules ``name`` imports (resolved to the longest known module name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    base = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(mod: str) -> str | None:
        while mod and mod not in known:
            mod = mod.rpartition(".")[0]
        return mod or None

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for n in child.orelse:
                    visit(n)
                continue
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] == ROOT:
                        found.add(resolve(a.name))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = base.split(".")
                    up = parts[: len(parts) - (child.level - 1)] if child.level > 1 else parts
                    mod = ".".join(up + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                if mod.split(".")[0] != ROOT:
                    continue
                for a in child.names:  # `from audit import stats` imports the module audit.stats
                    sub = f"{mod}.{a.name}"
                    found.add(sub if sub in known else resolve(mod))
            visit(child)

    visit(tree)
    found.discard(None)
    found.discard(name)
    return found


def cycles(root: str = ROOT) -> list[list[str]]:
    mods = modules(root)
    names = sorted(mods)
    index = {m: i for i, m in enumerate(names)}
    rows, cols = [], []
    for m in names:
        for d in imports_of(m, mods[m], set(mods)):
            rows.append(index[m])
            cols.append(index[d])
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(graph, directed=True, connection="strong")
    groups: dict[int, list[str]] = {}
    for m, lab in zip(names, labels):
        groups.setdefault(int(lab), []).append(m)
    return [g for g in groups.values() if len(g) > 1]


def main() -> int:
    found = cycles()
    n = len(modules())
    if not found:
        print(f"no import cycle among {n} modules of {ROOT}")
        return 0
    for c in found:
        print("cycle: " + " <-> ".join(c))
    return 1


if __name__ == "__main__":
    sys.exit(main())
