"""The package's import graph: every module imports, no import circle, and the layers point one way.

Imports are read with ``ast`` from every module's source, function-level (lazy) imports included, since a
lazy import is still a dependency: the circle io/checkpoints <-> train/checkpoints was made of one.
"""

import ast
import functools
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mantra_jax"


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@functools.lru_cache(maxsize=1)
def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (anywhere in its source)."""
    graph = {}
    for name, path in MODULES.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(_resolve(a.name) for a in node.names if a.name.startswith("mantra_jax"))
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("mantra_jax"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    deps.add(full if full in MODULES else _resolve(node.module))
        graph[name] = deps - {None, name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("lower,upper", [("mantra_jax.io", "mantra_jax.train"), ("mantra_jax.models", "mantra_jax.train"),
                                         ("mantra_jax.ops", "mantra_jax.models"), ("mantra_jax.ops", "mantra_jax.io")])
def test_a_lower_layer_never_imports_a_higher_one(lower, upper):
    bad = sorted(f"{m} -> {d}" for m, deps in import_graph().items() if m.startswith(lower)
                 for d in deps if d.startswith(upper))
    assert not bad, bad


def test_the_errors_module_imports_nothing_of_the_package():
    assert import_graph()["mantra_jax.errors"] == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)
