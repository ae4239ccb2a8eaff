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
