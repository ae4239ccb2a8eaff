"""tinynet's modules import each other one way only: no cycle at module level.

Each module's top-level imports (not those inside functions, which run later, nor those under
``if TYPE_CHECKING``) are edges to the module that provides the name: ``from tinynet.nn import
init`` is an edge to ``tinynet.nn.init``, ``from tinynet.ops import stack`` one to
``tinynet.ops``. A cycle in that graph means some module can only be read (and imported)
half-way; Tensor meets ops and autograd in one documented place instead (tinynet/__init__.py).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import tinynet

PACKAGE = Path(tinynet.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def top_level_imports(path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    targets: set[str] = set()
    for node in tree.body:  # module level only
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]
        else:
            continue
        targets.update(name for name in names if name in known)
    return targets


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: top_level_imports(path, known) - {name} for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of module names, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            for nxt in stack[-1]:
                if state.get(nxt) == 1:
                    return path[path.index(nxt):] + [nxt]
                if not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append(iter(sorted(graph[nxt])))
                    break
            else:
                state[path.pop()] = 2
                stack.pop()
    return None


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_among_tinynet_modules() -> None:
    graph = import_graph()
    assert "tinynet.autograd.engine" in graph and "tinynet.tensor" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_tensor_imports_neither_ops_nor_autograd() -> None:
    graph = import_graph()
    assert not {m for m in graph["tinynet.tensor"] if m.startswith(("tinynet.ops",
                                                                     "tinynet.autograd"))}
    tensor_module = sys.modules["tinynet.tensor"]  # tn.tensor is the creation function
    assert tensor_module.ops is tinynet.ops and tensor_module.autograd is tinynet.autograd


# ---- counting imports made inside functions too (issue 18) ----------------------------------


def all_imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every import of a module, at module level or inside a function (a deferred import is
    still a dependency: the module cannot be read without the other one), except those under
    ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
               for n in ast.walk(node)}
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]
        else:
            continue
        targets.update(name for name in names if name in known)
    return targets


def every_cycle(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles found one at a time, each broken at its last edge before looking again."""
    graph = {name: set(targets) for name, targets in graph.items()}
    cycles = []
    while (cycle := find_cycle(graph)) is not None:
        cycles.append(cycle)
        graph[cycle[-2]].discard(cycle[-1])
    return cycles


def test_the_function_level_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from tinynet import kernels\n"
                      "    return kernels\n")
    assert all_imports(module, modules()) == {"tinynet.kernels"}
    assert top_level_imports(module, modules()) == set()


def test_no_import_cycle_anywhere_counting_imports_inside_functions() -> None:
    """Issue 18: no circle in tinynet, counting deferred imports too (it named four:
    compile/api <-> compile/codegen, dtypes <-> tensor, kernels -> kernels.reference ->
    perceptron -> kernels, ops.elementwise <-> ops.operands; later kernels <-> kernels.conv,
    ops <-> ops.inplace, ops <-> ops.ufuncs and autograd.engine -> checks -> grad_mode)."""
    known = modules()
    graph = {name: all_imports(path, known) - {name} for name, path in known.items()}
    cycles = every_cycle(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_counting_function_imports_fails_on_a_deferred_cycle(tmp_path: Path
                                                                         ) -> None:
    """A cycle closed only by an import inside a function is still a cycle."""
    (tmp_path / "a.py").write_text("import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import a\n    return a\n")
    known = {"a": tmp_path / "a.py", "b": tmp_path / "b.py"}
    graph = {name: all_imports(path, known) - {name} for name, path in known.items()}
    assert every_cycle(graph) == [["a", "b", "a"]]


def test_the_ground_floor_imports_nothing_of_the_story() -> None:
    """tinynet.kernels (numba kernels, their twins, the formula table) imports only itself."""
    known = modules()
    for name, path in known.items():
        if name == "tinynet.kernels" or name.startswith("tinynet.kernels."):
            above = {m for m in all_imports(path, known)
                     if not m.startswith("tinynet.kernels")}
            assert not above, f"{name} imports {sorted(above)}"
