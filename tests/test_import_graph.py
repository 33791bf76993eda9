"""The package's import graph: no cycle among modules, and the hardware models stand alone.

Read statically (``ast``), every import anywhere in a module (also inside functions), resolved to the
project's modules: a package import is an edge to its ``__init__``; ``from pkg import name`` is an edge
to ``pkg.name`` where that is a module, else to ``pkg``.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lowbit_rbp", "kernels", "hw_models")


def _modules() -> dict:
    """{dotted module name: path} of every module of the project's packages."""
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set:
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]   # the package relative imports start from
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (here[:len(here) - node.level + 1] if node.level else [])
            base = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:             # `import a.b.c` of a name inside a.b.c: its module
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict):
    """One import cycle as a list of modules, or None (depth-first search, colours)."""
    colour, stack = {}, []

    def visit(m):
        colour[m] = "grey"
        stack.append(m)
        for n in sorted(graph[m]):
            if colour.get(n) == "grey":
                return stack[stack.index(n):] + [n]
            if n not in colour:
                found = visit(n)
                if found:
                    return found
        colour[m] = "black"
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in colour:
            found = visit(m)
            if found:
                return found
    return None


def test_the_resolver_sees_every_kind_of_import():
    g = _graph()
    assert "lowbit_rbp.core.config" in g["lowbit_rbp.results.records"]              # from ..core.config import
    assert "kernels.cpu" in g["kernels.dispatch.backends"]                         # from .. import cpu (in a function)
    assert {"kernels.dispatch.sparse", "kernels.dispatch.update"} <= g["kernels.dispatch"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert _cycle(_graph()) is None


def test_hardware_models_import_nothing_of_the_simulator():
    g = _graph()
    bad = {m: sorted(t for t in ts if t.startswith("lowbit_rbp")) for m, ts in g.items() if m.startswith("hw_models")}
    assert not any(bad.values()), bad
